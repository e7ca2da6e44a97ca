"""The websocket contract: a snapshot on connect, then live updates as batches commit;
and the fan-out never lets a slow client hold up the others."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg
import orjson
import pytest
import websockets

from app.db import create_pool
from app.live import LiveHub
from app.settings import DatabaseSettings, IngestSettings
from ingest.metrics import IngestMetrics
from ingest.model import Message
from ingest.pipeline import Pipeline
from tests.support import DISPATCH_TOKEN, LiveServer, add_town, make_settings


def message(vehicle: str, seconds_ago: float, lat: float, town: str = "kouvola") -> Message:
    t = datetime.now(UTC) - timedelta(seconds=seconds_ago)
    payload = orjson.dumps({"time": t.isoformat(), "lat": lat, "lon": 26.7, "heading": 90,
                            "plow": True})
    return Message(f"plowshare/{town}/{vehicle}/position", payload, datetime.now(UTC), 1, 1)


async def recv(ws: websockets.ClientConnection, timeout: float = 5) -> dict:
    while True:
        msg = orjson.loads(await asyncio.wait_for(ws.recv(), timeout))
        if msg["type"] != "ping":
            return msg


async def test_snapshot_then_updates(database: str, conn: asyncpg.Connection) -> None:
    await add_town(conn)
    await add_town(conn, "drammen", "Drammen")
    pool = await create_pool(DatabaseSettings(url=database))
    pipeline = Pipeline(IngestSettings(), IngestMetrics())
    try:
        await pipeline.process(pool, [message("plow-1", 60, 60.80)])
        async with LiveServer(make_settings(database)) as srv, websockets.connect(
            f"{srv.ws_url}/ws/towns/kouvola?token={DISPATCH_TOKEN}"
        ) as ws, websockets.connect(
            f"{srv.ws_url}/ws/towns/drammen?token={DISPATCH_TOKEN}"
        ) as other:
            snap = await recv(ws)
            assert snap["type"] == "snapshot" and snap["town"] == "kouvola"
            assert [(v["id"], v["lat"]) for v in snap["vehicles"]] == [("plow-1", 60.8)]
            assert (await recv(other)) == {"type": "snapshot", "town": "drammen",
                                           "vehicles": []}

            await pipeline.process(pool, [message("plow-1", 30, 60.81),
                                          message("plow-2", 20, 60.90)])
            update = await recv(ws)
            assert update["type"] == "positions" and update["town"] == "kouvola"
            assert {v["id"]: v["lat"] for v in update["vehicles"]} == {
                "plow-1": 60.81, "plow-2": 60.9}
            assert update["vehicles"][0]["heading"] == 90.0

            # Another town's clients hear nothing of it; their own town's pings they do.
            await pipeline.process(pool, [message("truck-5", 5, 59.74, town="drammen")])
            theirs = await recv(other)
            assert [v["id"] for v in theirs["vehicles"]] == ["truck-5"]
            with pytest.raises(TimeoutError):
                await recv(ws, timeout=0.5)
    finally:
        await pool.close()


async def test_unknown_town_is_refused(database: str) -> None:
    async with LiveServer(make_settings(database)) as srv:
        with pytest.raises(websockets.InvalidStatus) as info:
            async with websockets.connect(
                f"{srv.ws_url}/ws/towns/atlantis?token={DISPATCH_TOKEN}"
            ):
                pass
        assert info.value.response.status_code == 403


async def test_a_slow_subscriber_is_cut_off_and_others_keep_everything(database: str) -> None:
    hub = LiveHub(DatabaseSettings(url=database), queue_size=5)
    slow = hub.subscribe("kouvola")
    fast = hub.subscribe("kouvola")
    received: list[int] = []

    async def consume() -> None:
        while len(received) < 50:
            received.append((await fast.queue.get())["n"])

    consumer = asyncio.create_task(consume())
    for n in range(50):
        hub.dispatch({"town": "kouvola", "type": "positions", "n": n, "items": []})
        await asyncio.sleep(0)
    await asyncio.wait_for(consumer, 5)
    assert received == list(range(50))
    assert slow.overflowed and slow.closed.is_set() and slow.queue.qsize() == 5
    assert hub.dropped_slow_clients == 1


async def test_slow_websocket_client_is_closed_with_try_again_later(
    database: str, conn: asyncpg.Connection
) -> None:
    await add_town(conn)
    settings = make_settings(database)
    settings.server.ws_queue_size = 1
    async with LiveServer(settings) as srv, websockets.connect(
        f"{srv.ws_url}/ws/towns/kouvola?token={DISPATCH_TOKEN}"
    ) as ws:
        assert (await recv(ws))["type"] == "snapshot"
        hub: LiveHub = srv.app.state.hub
        # Far more than the client's queue, faster than any socket drains it.
        for n in range(50):
            hub.dispatch({"town": "kouvola", "type": "positions", "items": [{"n": n}]})
        with pytest.raises(websockets.ConnectionClosed) as info:
            while True:
                await recv(ws)
        assert info.value.rcvd is not None and info.value.rcvd.code == 1013


async def test_the_dispatcher_feed_needs_the_dispatch_token(
    database: str, conn: asyncpg.Connection
) -> None:
    await add_town(conn)
    async with LiveServer(make_settings(database)) as srv:
        for query in ("", "?token=wrong"):
            with pytest.raises(websockets.InvalidStatus) as info:
                async with websockets.connect(f"{srv.ws_url}/ws/towns/kouvola{query}"):
                    pass
            assert info.value.response.status_code == 403
