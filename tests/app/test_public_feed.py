"""The public live feed applies the town's rules — pseudonyms, idle and depot vehicles
hidden, positions and street status delayed — while the dispatcher feed shows all."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import orjson
import pytest
import websockets

from app.db import create_pool
from app.settings import DatabaseSettings, IngestSettings
from app.storms import start_storm
from ingest.coverage_store import Service, record_services
from ingest.metrics import IngestMetrics
from ingest.model import Message
from ingest.pipeline import Pipeline
from tests.public_support import add_vehicle, ago, seed_town, serve
from tests.support import DISPATCH_TOKEN, LiveServer, make_settings


def fix(vehicle: str, lat: float, lon: float, *, seconds_ago: float = 0, plow: bool = True,
        speed: float = 6.0) -> Message:
    t = datetime.now(UTC) - timedelta(seconds=seconds_ago)
    payload = orjson.dumps({"time": t.isoformat(), "lat": lat, "lon": lon, "heading": 90,
                            "speed": speed, "plow": plow})
    return Message(f"plowshare/kouvola/{vehicle}/position", payload, datetime.now(UTC))


async def recv(ws: websockets.ClientConnection, kind: str | None = None,
               timeout: float = 10) -> dict[str, Any]:
    while True:
        msg: dict[str, Any] = orjson.loads(await asyncio.wait_for(ws.recv(), timeout))
        if msg["type"] != "ping" and (kind is None or msg["type"] == kind):
            return msg


async def set_rules(conn: asyncpg.Connection, **values: object) -> None:
    for column, value in values.items():
        assert column in {"delay_s", "off_storm_delay_s", "pseudonymous", "hide_idle",
                          "idle_after_s"}
        # Column names come from the fixed set above; values travel as parameters.
        await conn.execute(f"UPDATE town_settings SET {column} = $1", value)


async def test_pseudonyms_idle_and_depots(database: str, conn: asyncpg.Connection) -> None:
    town, _ = await seed_town(conn)
    await start_storm(conn, "kouvola")
    await conn.execute(
        """INSERT INTO depots (town_id, name, geom, radius_m)
           VALUES ($1, 'Depot', ST_SetSRID(ST_MakePoint(26.690, 60.870), 4326), 150)""", town)
    pool = await create_pool(DatabaseSettings(url=database))
    pipeline = Pipeline(IngestSettings(), IngestMetrics())
    try:
        await pipeline.process(pool, [
            fix("plow-1", 60.866, 26.705),                        # working: shown
            fix("plow-2", 60.864, 26.709, plow=False, speed=0),   # parked: hidden
            fix("plow-3", 60.8705, 26.6905),                      # at the depot: hidden
            fix("plow-4", 60.866, 26.710, seconds_ago=1200),      # silent 20 min: hidden
        ])
        async with LiveServer(make_settings(database)) as srv, websockets.connect(
            f"{srv.ws_url}/ws/public/kouvola"
        ) as pub, websockets.connect(
            f"{srv.ws_url}/ws/towns/kouvola?token={DISPATCH_TOKEN}") as dispatch:
            snap = await recv(pub, "snapshot")
            [shown] = snap["vehicles"]
            assert shown["id"] != "plow-1" and shown["label"] == f"Plow {shown['id']}"
            assert "plow-" not in orjson.dumps(snap).decode()
            assert snap["rules"]["delay_s"] == 0 and snap["storm"]["running"]
            assert snap["status_version"].startswith(f"{snap['storm']['id']}.0.")
            everyone = await recv(dispatch, "snapshot")
            assert sorted(v["id"] for v in everyone["vehicles"]) == [
                "plow-1", "plow-2", "plow-3", "plow-4"]

            # plow-2 gets to work; plow-1 drives into the depot and disappears.
            await pipeline.process(pool, [fix("plow-2", 60.865, 26.709),
                                          fix("plow-1", 60.8702, 26.6901)])
            update = await recv(pub, "positions")
            assert [v["label"] for v in update["vehicles"]] != []
            assert update["gone"] == [shown["id"]]
            [working] = update["vehicles"]
            assert working["id"] not in (shown["id"], "plow-2") and working["lat"] == 60.865
            raw = await recv(dispatch, "positions")
            assert {v["id"] for v in raw["vehicles"]} == {"plow-1", "plow-2"}

        # Pseudonyms off: the fleet's own names.
        await set_rules(conn, pseudonymous=False)
        async with LiveServer(make_settings(database)) as srv, websockets.connect(
            f"{srv.ws_url}/ws/public/kouvola"
        ) as pub:
            snap = await recv(pub, "snapshot")
            assert [v["id"] for v in snap["vehicles"]] == ["plow-2"]
    finally:
        await pool.close()


async def test_delay_holds_back_positions_and_status(database: str,
                                                     conn: asyncpg.Connection) -> None:
    town, ids = await seed_town(conn)
    plow = await add_vehicle(conn, town, "plow-1")
    await start_storm(conn, "kouvola", at=ago(hours=2))
    await set_rules(conn, delay_s=600, idle_after_s=3600)
    pool = await create_pool(DatabaseSettings(url=database))
    pipeline = Pipeline(IngestSettings(), IngestMetrics())
    # Served 15 min ago: public. Served 2 min ago: not yet (10 min delay).
    await serve(conn, town, "kouvola", ids["k1"], plow, ago(minutes=15))
    await serve(conn, town, "kouvola", ids["o1"], plow, ago(minutes=2))
    try:
        await pipeline.process(pool, [fix("plow-1", 60.860, 26.700, seconds_ago=900),
                                      fix("plow-1", 60.866, 26.711, seconds_ago=60)])
        async with LiveServer(make_settings(database)) as srv, websockets.connect(
            f"{srv.ws_url}/ws/public/kouvola"
        ) as pub:
            snap = await recv(pub, "snapshot")
            # Where the plow was ten minutes ago, not where it is.
            [v] = snap["vehicles"]
            assert (v["lat"], v["lon"]) == (60.86, 26.7)
            assert snap["rules"]["delay_s"] == 600
            as_of = datetime.fromisoformat(snap["as_of"])
            assert timedelta(seconds=590) < datetime.now(UTC) - as_of < timedelta(seconds=700)

            cards = {k: (await _card(srv.url, ids[k]))["status"]["state"] for k in ("k1", "o1")}
            assert cards == {"k1": "plowed", "o1": "none"}

            # Live: a fresh fix and a fresh pass are held back; a pass that ended 20 min
            # ago is due at once. Sent in that order, so whatever was not held back would
            # arrive before the old pass.
            await pipeline.process(pool, [fix("plow-1", 60.867, 26.712, seconds_ago=30)])
            await serve(conn, town, "kouvola", ids["f1"], plow, ago(minutes=1))
            await serve(conn, town, "kouvola", ids["s1"], plow, ago(minutes=20))
            first = await recv(pub)
            assert first["type"] == "segments"
            assert [s["id"] for s in first["items"]] == [ids["s1"]]
    finally:
        await pool.close()


async def test_a_delayed_feed_catches_up_on_what_comes_due(
    database: str, conn: asyncpg.Connection
) -> None:
    """A feed that starts with fixes already waiting out the delay shows them when due,
    instead of freezing the plow until its next fix."""
    await seed_town(conn)
    await start_storm(conn, "kouvola", at=ago(hours=1))
    await set_rules(conn, delay_s=30)
    pool = await create_pool(DatabaseSettings(url=database))
    pipeline = Pipeline(IngestSettings(), IngestMetrics())
    try:
        await pipeline.process(pool, [fix("plow-1", 60.860, 26.700, seconds_ago=60),
                                      fix("plow-1", 60.864, 26.704, seconds_ago=28)])
        async with LiveServer(make_settings(database)) as srv, websockets.connect(
            f"{srv.ws_url}/ws/public/kouvola"
        ) as pub:
            snap = await recv(pub, "snapshot")
            assert [(v["lat"], v["lon"]) for v in snap["vehicles"]] == [(60.86, 26.7)]
            update = await recv(pub, "positions", timeout=20)
            assert [(v["lat"], v["lon"]) for v in update["vehicles"]] == [(60.864, 26.704)]
    finally:
        await pool.close()


async def test_unknown_town_is_refused(database: str) -> None:
    async with LiveServer(make_settings(database)) as srv:
        with pytest.raises(websockets.InvalidStatus) as info:
            async with websockets.connect(f"{srv.ws_url}/ws/public/atlantis"):
                pass
        assert info.value.response.status_code == 403


async def test_matcher_store_path_reaches_public_feed(database: str,
                                                      conn: asyncpg.Connection) -> None:
    """The matcher's store (ingest.coverage_store.record_services) called directly: its
    NOTIFY reaches residents as a ``segments`` message."""
    town, ids = await seed_town(conn)
    plow = await add_vehicle(conn, town, "plow-1")
    await start_storm(conn, "kouvola", at=ago(hours=1))
    async with LiveServer(make_settings(database)) as srv, websockets.connect(
        f"{srv.ws_url}/ws/public/kouvola"
    ) as pub:
        await recv(pub, "snapshot")
        async with conn.transaction():
            await record_services(conn, town, "kouvola", [Service(
                segment_id=ids["k1"], vehicle_id=plow, forward=True,
                started_at=ago(seconds=50), ended_at=ago(seconds=10), fraction=1.0,
                plowed=True, salted=False, confidence=0.9)])
        segs = await recv(pub, "segments")
        assert [s["id"] for s in segs["items"]] == [ids["k1"]]


async def _card(base: str, segment: int) -> dict[str, Any]:
    import httpx

    async with httpx.AsyncClient(base_url=base) as http:
        card: dict[str, Any] = (await http.get(f"/api/towns/kouvola/segments/{segment}")).json()
        return card


async def test_a_client_leaving_while_the_feed_starts_does_not_strand_the_first(
    database: str, conn: asyncpg.Connection
) -> None:
    from app.db import create_pool
    from app.live import LiveHub
    from app.public_feed import PublicFeeds
    from app.public_status import RulesCache
    from app.settings import DatabaseSettings
    from tests.support import add_town

    await add_town(conn)
    pool = await create_pool(DatabaseSettings(url=database))
    feeds = PublicFeeds(pool, LiveHub(DatabaseSettings(url=database), 10), RulesCache(5.0),
                        10, 60.0)
    try:
        first = asyncio.create_task(feeds.subscribe("kouvola"))
        for _ in range(100):  # until the feed exists and is starting
            if "kouvola" in feeds._feeds:
                break
            await asyncio.sleep(0)
        passing = await feeds.subscribe("kouvola")  # joins the starting feed ...
        feeds.unsubscribe(passing)  # ... and leaves before it has started
        sub = await first
        feed = feeds._feeds["kouvola"]
        assert not feed.ended and not sub.closed.is_set() and sub in feed.subscribers
        assert feed._task is not None and not feed._task.done()
    finally:
        await feeds.close()
        await pool.close()
