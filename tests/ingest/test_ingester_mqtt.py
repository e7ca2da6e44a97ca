"""The ingest worker on a real Mosquitto and a real PostGIS: batching, QoS 1 with a
persistent session (fixes published while the ingester is down are not lost)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import orjson
import paho.mqtt.client as mqtt
import pytest

from app.broker import Broker
from app.settings import Settings
from ingest.service import Ingester
from tests.support import add_town, make_settings


def publisher(port: int) -> mqtt.Client:
    c = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
                    client_id="test-device")
    c.connect("127.0.0.1", port)
    c.loop_start()
    return c


def publish_fixes(c: mqtt.Client, vehicle: str, start: datetime, n: int, per_msg: int) -> None:
    infos = []
    for i in range(0, n, per_msg):
        fixes = [{"time": (start + timedelta(seconds=k)).isoformat(), "lat": 60.8 + k * 1e-5,
                  "lon": 26.7, "seq": k} for k in range(i, min(i + per_msg, n))]
        infos.append(c.publish(f"plowshare/kouvola/{vehicle}/position",
                               orjson.dumps(fixes if per_msg > 1 else fixes[0]), qos=1))
    for info in infos:
        info.wait_for_publish(timeout=10)


@contextlib.asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[Ingester]:
    ingester = Ingester(settings)
    task = asyncio.create_task(ingester.run())
    try:
        yield ingester
    finally:
        ingester.stop()
        await asyncio.wait_for(task, 15)


async def wait_count(conn: asyncpg.Connection, sql: str, want: int, timeout: float = 20) -> int:
    deadline = asyncio.get_running_loop().time() + timeout
    got = -1
    while asyncio.get_running_loop().time() < deadline:
        got = await conn.fetchval(sql)
        if got >= want:
            return int(got)
        await asyncio.sleep(0.1)
    return int(got)


async def connected(ingester: Ingester) -> None:
    # The ingester subscribes on connect; wait for the session to exist before publishing.
    await asyncio.sleep(0.5)


async def test_fixes_flow_from_mqtt_into_postgis_in_batches(
    broker: Broker, database: str, conn: asyncpg.Connection
) -> None:
    await add_town(conn)
    settings = make_settings(database, broker.port, batch_size=200, flush_interval_s=0.2)
    start = datetime.now(UTC) - timedelta(hours=1)
    async with running(settings) as ingester:
        await connected(ingester)
        dev = publisher(broker.port)
        try:
            await asyncio.to_thread(publish_fixes, dev, "plow-1", start, 1000, 1)
            await asyncio.to_thread(publish_fixes, dev, "plow-2", start, 1000, 50)
            await asyncio.to_thread(dev.publish("plowshare/kouvola/plow-3/position",
                                                b"not json", qos=1).wait_for_publish, 10)
        finally:
            dev.loop_stop()
            dev.disconnect()
        stored = await wait_count(conn, "SELECT count(*) FROM pings", 2000)
        rejected = await wait_count(conn, "SELECT count(*) FROM rejected_pings", 1)
        assert stored == 2000 and rejected == 1
        seqs = await conn.fetchval(
            "SELECT array_agg(DISTINCT seq ORDER BY seq) FROM pings p JOIN vehicles v "
            "ON v.id = p.vehicle_id WHERE v.ident = 'plow-1'")
        assert seqs == list(range(1000))
        m = ingester.metrics
        messages = m.registry.get_sample_value("plowshare_ingest_messages_total")
        batches = m.registry.get_sample_value("plowshare_ingest_batches_total")
        assert messages == 1000 + 20 + 1
        # 1021 messages in batches of at most 200 (flushes may also be cut by time).
        assert batches is not None and 6 <= batches < 1021


async def test_persistent_session_keeps_fixes_published_while_ingester_is_down(
    broker: Broker, database: str, conn: asyncpg.Connection
) -> None:
    await add_town(conn)
    settings = make_settings(database, broker.port)
    start = datetime.now(UTC) - timedelta(minutes=30)
    async with running(settings) as ingester:
        await connected(ingester)
    # The ingester is gone; its session (client id, subscription) stays in the broker.
    dev = publisher(broker.port)
    try:
        await asyncio.to_thread(publish_fixes, dev, "plow-9", start, 300, 10)
    finally:
        dev.loop_stop()
        dev.disconnect()
    assert await conn.fetchval("SELECT count(*) FROM pings") == 0
    async with running(settings):
        assert await wait_count(conn, "SELECT count(*) FROM pings", 300) == 300
    assert await conn.fetchval("SELECT count(*) FROM rejected_pings") == 0


@pytest.mark.parametrize("shared", [None, "workers"])
async def test_subscription_topic(shared: str | None) -> None:
    from app.settings import MqttSettings
    from ingest.mqtt import subscriptions

    topics = subscriptions(MqttSettings(shared_group=shared))
    prefix = "$share/workers/" if shared else ""
    assert topics == [prefix + "plowshare/+/+/position", prefix + "owntracks/+/+"]


async def test_a_coverage_worker_that_dies_is_restarted_and_storing_goes_on(
    broker: Broker, database: str, conn: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ingest.service as service

    await add_town(conn)
    runs: list[int] = []
    real_run = service.CoverageWorker.run

    async def flaky(self: service.CoverageWorker) -> None:
        runs.append(1)
        if len(runs) == 1:
            raise RuntimeError("a bug in matching")
        await real_run(self)

    monkeypatch.setattr(service.CoverageWorker, "run", flaky)
    settings = make_settings(database, broker.port)
    start = datetime.now(UTC) - timedelta(minutes=10)
    async with running(settings) as ingester:
        await connected(ingester)
        dev = publisher(broker.port)
        try:
            await asyncio.to_thread(publish_fixes, dev, "plow-1", start, 50, 10)
        finally:
            dev.loop_stop()
            dev.disconnect()
        assert await wait_count(conn, "SELECT count(*) FROM pings", 50) == 50
        assert len(runs) == 2
        assert ingester.metrics.registry.get_sample_value(
            "plowshare_coverage_errors_total") == 1
