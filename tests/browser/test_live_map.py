"""The live map in a real browser: streets drawn from the API, plows from the websocket,
moving as new fixes are ingested — and nothing blocked by the page's CSP."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg
import orjson
from playwright.async_api import Browser, Page

from app.db import create_pool
from app.settings import DatabaseSettings, IngestSettings
from ingest.metrics import IngestMetrics
from ingest.model import Message
from ingest.pipeline import Pipeline
from tests.support import DISPATCH_TOKEN, LiveServer, add_town, make_settings

MAP = "document.getElementById('map').plowshareMap"


def fix(vehicle: str, lat: float, lon: float, heading: float, ago: float = 0) -> Message:
    t = datetime.now(UTC) - timedelta(seconds=ago)
    payload = orjson.dumps({"time": t.isoformat(), "lat": lat, "lon": lon,
                            "heading": heading, "speed": 6.0, "plow": True})
    return Message(f"plowshare/kouvola/{vehicle}/position", payload, datetime.now(UTC))


async def rendered(page: Page, layer: str) -> list[dict[str, object]]:
    result: list[dict[str, object]] = await page.evaluate(
        f"{MAP}.queryRenderedFeatures({{layers: ['{layer}']}}).map(f => f.properties)")
    return result


async def until(page: Page, js: str, timeout_s: float = 15) -> object:
    for _ in range(int(timeout_s * 10)):
        value = await page.evaluate(js)
        if value:
            return value
        await asyncio.sleep(0.1)
    raise AssertionError(f"never true: {js}")


async def test_streets_and_moving_plows(
    browser: Browser, database: str, conn: asyncpg.Connection
) -> None:
    town = await add_town(conn)
    await conn.execute(
        """INSERT INTO street_segments (town_id, source_id, name, road_class, oneway,
               length_m, priority, geom) VALUES
           ($1, 'a', 'Kauppalankatu', 'primary', false, 800, 1,
            ST_GeomFromText('LINESTRING(26.700 60.866, 26.715 60.866)', 4326)),
           ($1, 'b', 'Salpausselänkatu', 'residential', false, 600, 3,
            ST_GeomFromText('LINESTRING(26.705 60.862, 26.705 60.870)', 4326))""",
        town)
    pool = await create_pool(DatabaseSettings(url=database))
    pipeline = Pipeline(IngestSettings(), IngestMetrics())
    errors: list[str] = []
    try:
        await pipeline.process(pool, [fix("plow-1", 60.866, 26.702, 90, ago=2)])
        async with LiveServer(make_settings(database)) as srv:
            page = await browser.new_page(viewport={"width": 1100, "height": 700})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            # The fleet map is the dispatcher's; its token travels in the fragment.
            await page.goto(f"{srv.url}/dispatch/t/kouvola/#token={DISPATCH_TOKEN}")
            await until(page, "document.querySelector('#conn').textContent.includes('live')")
            assert await page.text_content("#town-name") == "Kouvola"
            await until(page, f"{MAP} && {MAP}.loaded() && "
                              f"{MAP}.queryRenderedFeatures({{layers:['streets']}}).length > 0")
            await until(page, f"{MAP}.queryRenderedFeatures({{layers:['vehicles-icon']}})"
                              ".length == 1")
            [v] = await rendered(page, "vehicles-icon")
            assert v["id"] == "plow-1"
            start = await page.evaluate(
                f"{MAP}.querySourceFeatures('vehicles')[0].geometry.coordinates")
            assert "plow-1" in (await page.text_content("#vehicles") or "")

            # New fixes arrive over the websocket: the plow moves east and a second appears.
            await pipeline.process(pool, [fix("plow-1", 60.866, 26.712, 90),
                                          fix("plow-2", 60.868, 26.705, 180)])
            await until(page, f"{MAP}.queryRenderedFeatures({{layers:['vehicles-icon']}})"
                              ".length == 2")
            moved = await until(
                page,
                f"(() => {{ const f = {MAP}.querySourceFeatures('vehicles')"
                ".find(f => f.properties.id === 'plow-1');"
                " return f && f.geometry.coordinates[0] > 26.711 && f.geometry.coordinates; })()")
            assert isinstance(moved, list) and moved[0] > start[0]
            assert "plow-2" in (await page.text_content("#vehicles") or "")
            await page.close()
    finally:
        await pool.close()
    assert not [e for e in errors if "Content Security Policy" in e or "Refused" in e], errors
    assert errors == []
