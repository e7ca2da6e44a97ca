"""Screenshots of the residents' page during a simulated storm, on the real Syracuse snow
routes: a scratch database, the city's 5,018 blocks with their address ranges and route
priorities, twelve hours of the city's own "serviced" records from the 26–27 December 2025
storm replayed so that they end now, a few plows on the street over the ingest pipeline,
then headless Chromium on a phone and on a desktop. The scratch database is dropped.

    .venv/bin/python scripts/screenshot.py [--out DIR]

Needs PostgreSQL (PLOWSHARE_TEST_ADMIN_URL or the development default), Debian's chromium,
the map assets (static/node_modules) and ../shared/data/plow/syracuse/.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import gzip
import os
import secrets
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import orjson

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from app.addresses import import_address_ranges  # noqa: E402
from app.broker import free_port  # noqa: E402
from app.db import connect, create_pool  # noqa: E402
from app.dbadmin import create_database, drop_database  # noqa: E402
from app.importer import import_segments  # noqa: E402
from app.migrate import migrate  # noqa: E402
from app.settings import DatabaseSettings, IngestSettings, Settings  # noqa: E402
from app.storms import start_storm  # noqa: E402
from app.streets.geojson import read_geojson  # noqa: E402
from app.streets.load import load_segments  # noqa: E402
from ingest.coverage_store import Service, record_services  # noqa: E402
from ingest.metrics import IngestMetrics  # noqa: E402
from ingest.model import Message  # noqa: E402
from ingest.pipeline import Pipeline  # noqa: E402

DATA = REPO.parent / "shared/data/plow/syracuse"
ADMIN = os.environ.get("PLOWSHARE_TEST_ADMIN_URL",
                       "postgresql://plowshare:plowshare@127.0.0.1:5432/postgres")
# The storm's busiest twelve hours in the city's record, replayed to end "now".
WINDOW = (datetime(2025, 12, 26, 20, tzinfo=UTC), datetime(2025, 12, 27, 8, tzinfo=UTC))
CHROMIUM_ARGS = ["--no-sandbox", "--enable-unsafe-swiftshader", "--use-angle=swiftshader",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


async def load_city(conn: asyncpg.Connection) -> tuple[int, dict[str, int]]:
    town = await conn.fetchval(
        "INSERT INTO towns (slug, name, timezone) VALUES ('syracuse', 'Syracuse', "
        "'America/New_York') RETURNING id")
    path = DATA / "snow_route_segments.geojson.gz"
    segments = load_segments(path, id_property="snowroutesegmentid", name_property="roadname")
    await import_segments(conn, town, segments)
    await import_address_ranges(conn, town, read_geojson(path),
                                id_property="snowroutesegmentid")
    ids = {r["source_id"]: r["id"] for r in await conn.fetch(
        "SELECT id, source_id FROM street_segments WHERE town_id = $1", town)}
    return town, ids


def city_events() -> list[dict[str, str]]:
    with gzip.open(DATA / "service_events.csv.gz", "rt", newline="") as f:
        return list(csv.DictReader(f))


def when(text: str) -> datetime:
    # "2025-12-27 09:43:11.000000000Z": nanoseconds Python cannot parse; seconds suffice.
    return datetime.strptime(text[:19], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)


async def replay(conn: asyncpg.Connection, town: int, ids: dict[str, int],
                 events: list[dict[str, str]], now: datetime) -> dict[str, tuple[int, datetime]]:
    """Priorities from the city's records, then its passes shifted to end now. The record
    names routes, not trucks: one vehicle per route. Route 1's passes are taken as salt
    runs, so the map shows salted-only streets too (simulated, said so here)."""
    priority = {e["snowroutesegmentid"]: int(e["routepriority"].split()[-1])
                for e in events if e["routepriority"]}
    await conn.executemany("UPDATE street_segments SET priority = $2 WHERE id = $1",
                           [(ids[s], p) for s, p in priority.items() if s in ids])
    shift = now - WINDOW[1]
    vehicles: dict[str, int] = {}
    services: list[Service] = []
    last: dict[str, tuple[int, datetime]] = {}
    for e in events:
        t, seg = when(e["serviced_at"]), ids.get(e["snowroutesegmentid"])
        if seg is None or not WINDOW[0] <= t < WINDOW[1]:
            continue
        route = e["snowrouteid"] or "Unassigned"
        if route not in vehicles:
            ident = route.lower().replace(" ", "-")
            vehicles[route] = await conn.fetchval(
                "INSERT INTO vehicles (town_id, ident, label) VALUES ($1, $2, $3) "
                "RETURNING id", town, ident, route)
        salt = route == "Route 1"
        end = t + shift
        services.append(Service(seg, vehicles[route], True, end - timedelta(seconds=50), end,
                                1.0, not salt, salt, 0.85))
        if route not in last or last[route][1] < end:
            last[route] = (seg, end)
    for i in range(0, len(services), 500):
        async with conn.transaction():
            await record_services(conn, town, "syracuse", services[i:i + 500])
    print(f"replayed {len(services)} passes by {len(vehicles)} routes", flush=True)
    return last


async def plows_on_the_street(pool: asyncpg.Pool, conn: asyncpg.Connection,
                              last: dict[str, tuple[int, datetime]]) -> None:
    """Six routes' trucks where their last pass ended, blade down, through the pipeline."""
    busiest = sorted(last.items(), key=lambda kv: kv[1][1], reverse=True)[:6]
    messages = []
    for route, (segment, _) in busiest:
        row = await conn.fetchrow(
            """SELECT ST_X(ST_EndPoint(geom)) AS lon, ST_Y(ST_EndPoint(geom)) AS lat,
                      degrees(ST_Azimuth(ST_StartPoint(geom), ST_EndPoint(geom))) AS heading
                 FROM street_segments WHERE id = $1""", segment)
        fix = {"time": datetime.now(UTC).isoformat(), "lat": row["lat"], "lon": row["lon"],
               "heading": row["heading"] or 0.0, "speed": 6.5, "plow": True}
        ident = route.lower().replace(" ", "-")
        messages.append(Message(f"plowshare/syracuse/{ident}/position", orjson.dumps(fix),
                                datetime.now(UTC)))
    await Pipeline(IngestSettings(), IngestMetrics()).process(pool, messages)


async def until(page: object, js: str, timeout_s: float = 60) -> None:
    # Not page.wait_for_function: it evaluates a string, which the page's CSP forbids.
    for _ in range(int(timeout_s * 10)):
        if await page.evaluate(js):  # type: ignore[attr-defined]
            return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"page never got ready: {js}")


async def shoot(url: str, out: Path) -> list[Path]:
    from playwright.async_api import async_playwright

    done = []
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path="/usr/bin/chromium",
                                           args=CHROMIUM_ARGS)
        ready = ("(() => { const m = document.getElementById('map').plowshareMap;"
                 " return m && m.loaded() && m.queryRenderedFeatures({layers: ['streets']})"
                 ".length > 0 && document.querySelector('#conn').textContent === 'live'; })()")
        for name, ctx_args, action in [
            ("overview", {"viewport": {"width": 1280, "height": 800}}, None),
            ("phone", {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2,
                       "is_mobile": True, "has_touch": True}, "address"),
            ("desktop", {"viewport": {"width": 1280, "height": 800},
                         "permissions": ["geolocation"],
                         "geolocation": {"latitude": 43.0481, "longitude": -76.1474}},
             "near"),
        ]:
            ctx = await browser.new_context(**ctx_args)
            page = await ctx.new_page()
            await page.goto(url)
            await until(page, ready)
            if action == "address":
                await page.fill("#q", "951 Oak St")
                await page.press("#q", "Enter")
            elif action == "near":
                await page.click("#near-me")
            if action:
                await page.wait_for_selector("#card:not([hidden]) .card-title",
                                             timeout=30_000)
            await until(page, ready)
            await page.wait_for_timeout(800)  # let the camera finish easing to the street
            path = out / f"public-{name}.png"
            await page.screenshot(path=str(path), full_page=False)
            done.append(path)
            await ctx.close()
        await browser.close()
    return done


async def main(out: Path) -> None:
    import uvicorn

    from app.main import create_app

    url = ADMIN.rsplit("/", 1)[0] + f"/plowshare_shot_{secrets.token_hex(4)}"
    await create_database(url)
    try:
        conn = await connect(DatabaseSettings(url=url))
        try:
            await migrate(conn, REPO / "migrations")
            town, ids = await load_city(conn)
            now = datetime.now(UTC)
            await start_storm(conn, "syracuse", "Winter storm (replayed)",
                              at=now - timedelta(hours=14))
            last = await replay(conn, town, ids, city_events(), now)
            pool = await create_pool(DatabaseSettings(url=url))
            try:
                await plows_on_the_street(pool, conn, last)
            finally:
                await pool.close()
        finally:
            await conn.close()
        settings = Settings(database=DatabaseSettings(url=url))
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1",
                                               port=port, log_level="warning",
                                               ws_per_message_deflate=False))
        task = asyncio.create_task(server.serve())
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.05)
        try:
            for path in await shoot(f"http://127.0.0.1:{port}/t/syracuse/", out):
                print(f"wrote {path}")
        finally:
            server.should_exit = True
            await task
    finally:
        await drop_database(url)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / ".run" / "screenshots")
    out = parser.parse_args().out
    out.mkdir(parents=True, exist_ok=True)
    asyncio.run(main(out))
