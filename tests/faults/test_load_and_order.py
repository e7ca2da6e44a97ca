"""A whole day replayed, a flooding device, a slow and reordering network: all fixes
stored once, nobody else's fixes held up or lost, the latest position the newest."""

from __future__ import annotations

import asyncio
import random
import threading
from datetime import UTC, datetime, timedelta

import asyncpg
import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from app.broker import Broker, free_port
from tests.faults.netem import LaggyProxy
from tests.faults.test_delivery import assert_exactly_once, ingester, wait_rows
from tests.support import add_town, make_settings


def client(port: int, name: str) -> mqtt.Client:
    c = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=name)
    c.max_inflight_messages_set(100)
    c.connect("127.0.0.1", port)
    c.loop_start()
    return c


def publish_all(c: mqtt.Client, topic: str, payloads: list[bytes]) -> None:
    infos = [c.publish(topic, p, qos=1) for p in payloads]
    for info in infos:
        info.wait_for_publish(timeout=120)


def day_of_fixes(start: datetime, n: int) -> list[dict[str, object]]:
    return [{"time": (start + timedelta(seconds=i)).isoformat(), "lat": 60.8 + (i % 900) * 1e-5,
             "lon": 26.7, "seq": i} for i in range(n)]


async def test_device_replays_a_whole_day(
    broker: Broker, database: str, conn: asyncpg.Connection
) -> None:
    await add_town(conn)
    n = 86_400
    # Noon to noon, so the day spans two daily partitions.
    start = (datetime.now(UTC) - timedelta(days=2)).replace(hour=12, minute=0, second=0,
                                                           microsecond=0)
    fixes = day_of_fixes(start, n)
    payloads = [orjson.dumps(fixes[i:i + 1000]) for i in range(0, n, 1000)]
    async with ingester(make_settings(database, broker.port)):
        dev = client(broker.port, "replayer")
        try:
            await asyncio.to_thread(publish_all, dev, "plowshare/kouvola/plow-1/position",
                                    payloads)
            assert await wait_rows(conn, n, 120) == n
            # And once more, the whole day again (the device did not see an ack).
            await asyncio.to_thread(publish_all, dev, "plowshare/kouvola/plow-1/position",
                                    payloads)
            for _ in range(600):
                dups = await conn.fetchval(
                    "SELECT count(*) FROM rejected_pings WHERE reason = 'duplicate'")
                if dups >= n:
                    break
                await asyncio.sleep(0.2)
            assert dups == n
        finally:
            dev.loop_stop()
            dev.disconnect()
    await assert_exactly_once(conn, "plow-1", n)
    latest = await conn.fetchval("SELECT fix_time FROM vehicle_positions")
    assert latest == start + timedelta(seconds=n - 1)


async def test_flooding_device_does_not_hold_up_or_lose_others(
    broker: Broker, database: str, conn: asyncpg.Connection
) -> None:
    await add_town(conn)
    start = datetime.now(UTC) - timedelta(hours=8)  # 20,000 s of fixes, all in the past
    flood = [orjson.dumps(f) for f in day_of_fixes(start, 20_000)]
    calm = [orjson.dumps(f) for f in day_of_fixes(start, 200)]
    # A small in-process queue so back-pressure, not memory, absorbs the flood.
    settings = make_settings(database, broker.port, queue_size=50, batch_size=100)
    async with ingester(settings) as worker:
        flooder, normal = client(broker.port, "flooder"), client(broker.port, "normal")
        try:
            threads = [
                threading.Thread(target=publish_all,
                                 args=(flooder, "plowshare/kouvola/flood-1/position", flood)),
                threading.Thread(target=publish_all,
                                 args=(normal, "plowshare/kouvola/plow-2/position", calm)),
            ]
            for t in threads:
                t.start()
            for t in threads:
                await asyncio.to_thread(t.join, 180)
            assert await wait_rows(conn, 20_200, 120) == 20_200
        finally:
            for c in (flooder, normal):
                c.loop_stop()
                c.disconnect()
        assert worker.metrics.registry.get_sample_value(
            "plowshare_ingest_messages_total") == 20_200
    await assert_exactly_once(conn, "flood-1", 20_000)
    await assert_exactly_once(conn, "plow-2", 200)


async def test_slow_reordering_network(
    broker: Broker, database: str, conn: asyncpg.Connection
) -> None:
    await add_town(conn)
    rng = random.Random(7)
    start = datetime.now(UTC) - timedelta(minutes=30)
    fixes = day_of_fixes(start, 600)
    # The device's buffer comes out of order (a tunnel replay interleaved with live
    # fixes), over a link with 20-150 ms of latency per packet.
    chunks = [fixes[i:i + 10] for i in range(0, 600, 10)]
    rng.shuffle(chunks)
    async with LaggyProxy(free_port(), broker.port, rng, 0.02, 0.15) as proxy, ingester(
        make_settings(database, broker.port)
    ):
        dev = client(proxy.port, "laggy")
        try:
            await asyncio.to_thread(publish_all, dev, "plowshare/kouvola/plow-3/position",
                                    [orjson.dumps(c) for c in chunks])
            assert await wait_rows(conn, 600, 60) == 600
        finally:
            dev.loop_stop()
            dev.disconnect()
    await assert_exactly_once(conn, "plow-3", 600)
    assert await conn.fetchval("SELECT fix_time FROM vehicle_positions") == \
        start + timedelta(seconds=599)
