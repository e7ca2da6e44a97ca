"""The residents' page in real headless Chromium: streets coloured from vector tiles,
"find my street" by name and by (faked) location, a street's colour changing live when a
plow covers it, a problem report, and a plow published over MQTT moving on the map."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import httpx
import orjson
import paho.mqtt.client as mqtt
from playwright.async_api import Browser, Page

from app.broker import Broker
from app.public_settings import PublicSettings
from app.settings import CoverageSettings, Settings
from app.storms import start_storm
from ingest.service import Ingester
from tests.public_support import add_vehicle, ago, seed_town, serve
from tests.support import LiveServer, make_settings

MAP = "document.getElementById('map').plowshareMap"
# static/public/status.js: bins < 1 h … > 12 h, salted only, not yet.
BIN_0, BIN_2, SALTED, NONE = "#00684a", "#b08900", "#6741d9", "#868e96"

COLOURS_JS = f"""(() => {{
  const hex = (c) => '#' + [c.r, c.g, c.b].map(v => Math.round(v * 255 / (c.a || 1))
      .toString(16).padStart(2, '0')).join('');
  const out = {{}};
  for (const f of {MAP}.queryRenderedFeatures({{layers: ['streets']}}))
    out[f.id] = hex(f.layer.paint['line-color']);
  return out;
}})()"""


async def until(page: Page, js: str, timeout_s: float = 20) -> object:
    for _ in range(int(timeout_s * 10)):
        value = await page.evaluate(js)
        if value:
            return value
        await asyncio.sleep(0.1)
    raise AssertionError(f"never true: {js}")


async def colours(page: Page) -> dict[int, str]:
    got: dict[str, str] = await page.evaluate(COLOURS_JS)
    return {int(k): v for k, v in got.items()}


async def open_page(browser: Browser, url: str, errors: list[str], **context: object
                    ) -> Page:
    ctx = await browser.new_context(viewport={"width": 1100, "height": 760}, **context)
    page = await ctx.new_page()
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    await page.goto(url)
    await until(page, "document.querySelector('#conn').textContent.includes('live')")
    await until(page, f"{MAP} && {MAP}.loaded() && "
                      f"{MAP}.queryRenderedFeatures({{layers: ['streets']}}).length > 0")
    return page


async def test_colours_search_near_me_live_status_and_report(
    browser: Browser, database: str, conn: asyncpg.Connection
) -> None:
    town, ids = await seed_town(conn)
    plow = await add_vehicle(conn, town, "plow-9")
    await start_storm(conn, "kouvola", "Boxing Day storm", at=ago(hours=8))
    await serve(conn, town, "kouvola", ids["k1"], plow, ago(minutes=30))
    await serve(conn, town, "kouvola", ids["f1"], plow, ago(hours=4))
    await serve(conn, town, "kouvola", ids["s1"], plow, ago(hours=2), plowed=False,
                salted=True)
    errors: list[str] = []
    async with LiveServer(make_settings(database)) as srv:
        page = await open_page(
            browser, f"{srv.url}/t/kouvola/", errors, permissions=["geolocation"],
            geolocation={"latitude": 60.8641, "longitude": 26.7093})
        assert await page.text_content("#town-name") == "Kouvola"
        assert "Boxing Day storm" in (await page.text_content("#storm-banner") or "")
        await until(page, f"Object.keys({COLOURS_JS}).length === {len(ids)}")
        got = await colours(page)
        assert got[ids["k1"]] == BIN_0  # plowed 30 min ago
        assert got[ids["f1"]] == BIN_2  # plowed 4 h ago: the 3–6 h bin
        assert got[ids["s1"]] == SALTED
        assert got[ids["o1"]] == NONE and got[ids["r1"]] == NONE
        legend = await page.text_content("#legend-items") or ""
        assert "Plowed < 1 h ago" in legend and "Not yet this storm" in legend

        # Find my street by name, with a typo: the street card.
        await page.fill("#q", "Kaupalankatu")
        await page.press("#q", "Enter")
        first = page.locator("#results .result").first
        assert (await first.text_content() or "").startswith("Kauppalankatu")
        await first.press("Enter")  # keyboard, as a screen-reader user would
        await page.wait_for_selector("#card:not([hidden]) .card-title")
        card = await page.text_content("#card") or ""
        assert "Kauppalankatu" in card and "1 of 2 blocks plowed" in card
        assert "priority 1" in card.lower()

        # Near me (faked location beside Fifth Avenue): the block's card and evidence.
        await page.click("#near-me")
        await until(page, "document.querySelector('#card .card-title')"
                          ".textContent === 'Fifth Avenue'")
        card = await page.text_content("#card") or ""
        assert "Plowed 4 hours ago" in card and "Passes this storm1" in card
        assert "Plow " in card and "blade down" in card and "match confidence 90%" in card
        assert "plow-9" not in card
        assert "Priority 1 streets: 50% done" in card
        assert "Your street is priority 3" in card

        # A plow covers Oak Street: its colour changes live, no reload, no polling.
        # (The card zoomed the map to Fifth Avenue; Oak Street must be on screen.)
        await page.evaluate(f"{MAP}.fitBounds([[26.699, 60.861], [26.713, 60.870]], "
                            "{duration: 0})")
        await until(page, f"{COLOURS_JS}[{ids['o1']}] === '{NONE}'")
        requests: list[str] = []
        page.on("request", lambda r: requests.append(r.url) if "/api/" in r.url else None)
        await serve(conn, town, "kouvola", ids["o1"], plow, ago(seconds=5))
        await until(page, f"{COLOURS_JS}[{ids['o1']}] === '{BIN_0}'")
        assert not [u for u in requests if "/segments?" in u or "/streets" in u]

        # Report a problem with the block shown.
        await page.click(".card-report summary")
        await page.select_option("#report-code", "not_plowed")
        await page.fill("#report-text", "Only one lane was done")
        await page.click(".report-send")
        await until(page, "document.querySelector('.report-status').textContent"
                          ".includes('Thank you')")
        assert await conn.fetchval(
            "SELECT description FROM problem_reports WHERE segment_id = $1",
            ids["f1"]) == "Only one lane was done"

        # The dispatcher ends the storm: the page says so at once and keeps its colours,
        # now aged against the storm's end.
        srv.app.state.public = PublicSettings(dispatch_token="d1spatch")
        async with httpx.AsyncClient(base_url=srv.url) as http:
            r = await http.post("/api/dispatch/towns/kouvola/storms/end",
                                headers={"Authorization": "Bearer d1spatch"})
            assert r.status_code == 200, r.text
        await until(page, "document.querySelector('#storm-banner').textContent"
                          ".includes('ended')")
        assert "is-ended" in (await page.get_attribute("#storm-banner", "class") or "")
        assert (await colours(page))[ids["o1"]] == BIN_0
        await page.context.close()
    assert not [e for e in errors if "Content Security Policy" in e or "Refused" in e], errors
    assert errors == []


def publish(c: mqtt.Client, vehicle: str, lat: float, lon: float, heading: float) -> None:
    fix = {"time": datetime.now(UTC).isoformat(), "lat": lat, "lon": lon, "speed": 7.0,
           "heading": heading, "plow": True}
    c.publish(f"plowshare/kouvola/{vehicle}/position", orjson.dumps(fix),
              qos=1).wait_for_publish(timeout=10)


async def stored(conn: asyncpg.Connection, n: int) -> None:
    """Wait until the ingester has committed n fixes (so a failure says which side)."""
    for _ in range(300):
        if await conn.fetchval("SELECT count(*) FROM pings") >= n:
            return
        await asyncio.sleep(0.1)
    rejected = await conn.fetch("SELECT reason, detail FROM rejected_pings")
    raise AssertionError(f"the ingester stored fewer than {n} fixes; rejected: {rejected}")


@contextlib.asynccontextmanager
async def ingesting(settings: Settings) -> AsyncIterator[None]:
    ingester = Ingester(settings)
    task = asyncio.create_task(ingester.run())
    try:
        yield
    finally:
        ingester.stop()
        await asyncio.wait_for(task, 15)


async def test_plow_over_mqtt_appears_and_moves(
    browser: Browser, broker: Broker, database: str, conn: asyncpg.Connection
) -> None:
    await seed_town(conn)
    await start_storm(conn, "kouvola", at=ago(hours=1))
    # The street matcher is another issue's work; this test is about positions only.
    settings = dataclasses.replace(make_settings(database, broker.port),
                                   coverage=CoverageSettings(enabled=False))
    errors: list[str] = []
    dev = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
                      client_id="test-plow-device")
    dev.connect("127.0.0.1", broker.port)
    dev.loop_start()
    try:
        async with ingesting(settings), LiveServer(settings) as srv:
            page = await open_page(browser, f"{srv.url}/t/kouvola/", errors)
            plows_js = f"{MAP}.queryRenderedFeatures({{layers: ['plows']}})"
            await asyncio.to_thread(publish, dev, "plow-1", 60.866, 26.701, 90.0)
            await stored(conn, 1)
            await until(page, f"{plows_js}.length === 1", timeout_s=30)
            [first] = await page.evaluate(f"{plows_js}.map(f => [f.geometry.coordinates, "
                                          "f.properties])")
            (lon, _lat), props = first
            assert abs(lon - 26.701) < 1e-6 and props["heading"] == 90
            assert props["label"].startswith("Plow ") and props["id"] != "plow-1"
            assert props["icon"] == "plow-down"
            await asyncio.to_thread(publish, dev, "plow-1", 60.866, 26.709, 95.0)
            await stored(conn, 2)
            await until(page, f"{plows_js}.length === 1 && "
                              f"{plows_js}[0].geometry.coordinates[0] > 26.708", timeout_s=30)
            moved = await page.evaluate(f"{plows_js}[0].properties")
            assert moved["heading"] == 95 and moved["id"] == props["id"]
            assert "1 plow out right now" in (await page.text_content("#plow-count") or "")
            await page.context.close()
    finally:
        dev.loop_stop()
        dev.disconnect()
    assert errors == []


