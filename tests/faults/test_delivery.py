"""Fault injection on real processes: every fix stored exactly once, counted by the
devices' own sequence numbers, whatever crashes in between."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from app.broker import Broker
from app.device_client import DeviceClient
from app.settings import Settings
from ingest.service import Ingester
from tests.support import add_town, make_settings

PLOWSHARE = str(Path(sys.executable).with_name("plowshare"))


def fix(i: int, start: datetime) -> dict[str, object]:
    return {"time": (start + timedelta(seconds=i)).isoformat(),
            "lat": 60.80 + (i % 500) * 1e-5, "lon": 26.70, "speed": 5.0}


async def assert_exactly_once(conn: asyncpg.Connection, vehicle: str, n: int) -> None:
    row = await conn.fetchrow(
        """SELECT count(*) AS rows, count(DISTINCT seq) AS seqs, min(seq) AS lo,
                  max(seq) AS hi
             FROM pings p JOIN vehicles v ON v.id = p.vehicle_id WHERE v.ident = $1""",
        vehicle)
    assert (row["rows"], row["seqs"], row["lo"], row["hi"]) == (n, n, 0, n - 1)


async def wait_rows(conn: asyncpg.Connection, n: int, timeout: float = 60) -> int:
    got = 0
    for _ in range(int(timeout * 10)):
        got = await conn.fetchval("SELECT count(*) FROM pings")
        if got >= n:
            break
        await asyncio.sleep(0.1)
    return int(got)


@contextlib.asynccontextmanager
async def ingester(settings: Settings) -> AsyncIterator[Ingester]:
    worker = Ingester(settings)
    task = asyncio.create_task(worker.run())
    await asyncio.sleep(0.5)
    try:
        yield worker
    finally:
        worker.stop()
        await asyncio.wait_for(task, 20)


def device(broker: Broker, vehicle: str, tmp: Path, **kw: object) -> DeviceClient:
    tmp.mkdir(parents=True, exist_ok=True)
    d = DeviceClient(host="127.0.0.1", port=broker.port, town="kouvola", vehicle=vehicle,
                     buffer_path=tmp / f"{vehicle}.sqlite", **kw)  # type: ignore[arg-type]
    d.start()
    return d


def send_paced(d: DeviceClient, start: datetime, first: int, last: int, rate: float,
               during: threading.Event | None = None) -> None:
    for i in range(first, last):
        d.send(fix(i, start))
        if rate:
            time.sleep(1 / rate)
    if during is not None:
        during.set()


async def test_broker_killed_and_restarted_under_load(
    broker: Broker, database: str, conn: asyncpg.Connection, tmp_path: Path
) -> None:
    await add_town(conn)
    n = 3000
    start = datetime.now(UTC) - timedelta(hours=2)
    async with ingester(make_settings(database, broker.port)):
        devices = [device(broker, f"plow-{k}", tmp_path, resend_after_s=3.0)
                   for k in range(3)]
        try:
            senders = [threading.Thread(target=send_paced, args=(d, start, 0, n, 1000.0))
                       for d in devices]
            for t in senders:
                t.start()
            await asyncio.sleep(1.0)  # well into the load
            broker.stop(kill=True)  # SIGKILL: whatever it had not saved is gone
            await asyncio.sleep(1.0)
            broker.start()
            for t in senders:
                await asyncio.to_thread(t.join, 60)
            for d in devices:
                assert await asyncio.to_thread(d.wait_all_acked, 90), d.unacked
            # The crash did bite: devices had to send again what was not acknowledged.
            assert sum(d.resent for d in devices) > 0
        finally:
            for d in devices:
                d.stop()
        for k in range(3):
            await assert_exactly_once(conn, f"plow-{k}", n)


@pytest.fixture
def ingest_process(broker: Broker, database: str, tmp_path: Path) -> Iterator[
        dict[str, object]]:
    """Runs `plowshare ingest` as a separate process that a test may crash and restart."""
    env = {**os.environ, "PLOWSHARE_DATABASE_URL": database,
           "PLOWSHARE_MQTT_PORT": str(broker.port),
           "PLOWSHARE_MQTT_CLIENT_ID": "fault-ingest",
           "PLOWSHARE_INGEST_BATCH_SIZE": "50",
           "PLOWSHARE_COVERAGE_ENABLED": "false"}
    procs: list[subprocess.Popen[bytes]] = []
    log = (tmp_path / "ingest.log").open("ab")

    def spawn(**extra: str) -> subprocess.Popen[bytes]:
        p = subprocess.Popen([PLOWSHARE, "ingest"], env={**env, **extra}, stdout=log,
                             stderr=subprocess.STDOUT)
        procs.append(p)
        return p

    try:
        yield {"spawn": spawn, "log": tmp_path / "ingest.log"}
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        log.close()


@pytest.mark.parametrize("point", ["exit_before_commit", "exit_after_commit"])
async def test_ingester_crash_before_and_after_commit(
    point: str, ingest_process: dict[str, object], broker: Broker,
    conn: asyncpg.Connection, tmp_path: Path,
) -> None:
    await add_town(conn)
    spawn = ingest_process["spawn"]
    n = 1000
    start = datetime.now(UTC) - timedelta(hours=1)
    crashing = spawn(PLOWSHARE_INGEST_FAULT_INJECTION=f"{point}:5")  # type: ignore[operator]
    await asyncio.sleep(1.0)
    d = device(broker, "plow-1", tmp_path, resend_after_s=2.0)
    try:
        await asyncio.to_thread(send_paced, d, start, 0, n, 2000.0)
        code = await asyncio.to_thread(crashing.wait, 30)
        assert code == 70, Path(str(ingest_process["log"])).read_text()[-2000:]
        stored_at_crash = await conn.fetchval("SELECT count(*) FROM pings")
        assert stored_at_crash < n
        spawn()  # type: ignore[operator]
        assert await asyncio.to_thread(d.wait_all_acked, 60), d.unacked
    finally:
        d.stop()
    await assert_exactly_once(conn, "plow-1", n)
    if point == "exit_after_commit":
        # The batch committed before the crash was delivered again: recorded as
        # duplicates, not stored twice.
        assert await conn.fetchval(
            "SELECT count(*) FROM rejected_pings WHERE reason = 'duplicate'") > 0


async def test_rejected_fixes_are_settled_so_acks_do_not_stall(
    broker: Broker, database: str, conn: asyncpg.Connection, tmp_path: Path
) -> None:
    await add_town(conn)
    start = datetime.now(UTC) - timedelta(hours=1)
    async with ingester(make_settings(database, broker.port)):
        d = device(broker, "plow-1", tmp_path, resend_after_s=60.0)
        try:
            for i in range(20):
                f = fix(i, start)
                if i in (5, 12):
                    f["lat"] = 123.0  # a broken receiver: rejected bad_coordinates
                d.send(f)
            # Without rejected seqs counted as settled the mark would stop at 4 for good,
            # however often the device re-sent.
            assert await asyncio.to_thread(d.wait_all_acked, 20), (d.acked_seq, d.unacked)
        finally:
            d.stop()
    assert await conn.fetchval("SELECT count(*) FROM pings") == 18
    assert await conn.fetchval(
        "SELECT array_agg(seq ORDER BY seq) FROM rejected_pings "
        "WHERE reason = 'bad_coordinates'") == [5, 12]


async def test_a_device_whose_first_fixes_are_all_refused_is_still_acknowledged(
    broker: Broker, database: str, conn: asyncpg.Connection, tmp_path: Path
) -> None:
    town = await add_town(conn)
    # A registered device (as `plowshare vehicles add` leaves it) that has no fix stored.
    await conn.execute("INSERT INTO vehicles (town_id, ident) VALUES ($1, 'plow-1')", town)
    async with ingester(make_settings(database, broker.port)) as worker:
        d = device(broker, "plow-1", tmp_path, resend_after_s=60.0)
        try:
            # No GPS lock yet: (0, 0) fixes, all quarantined as zero_coordinates.
            for i in range(3):
                d.send({"time": (datetime.now(UTC) - timedelta(seconds=10 - i)).isoformat(),
                        "lat": 0, "lon": 0})
            assert await asyncio.to_thread(d.wait_all_acked, 20), (d.acked_seq, d.unacked)
        finally:
            d.stop()
        assert worker.metrics.registry.get_sample_value(
            "plowshare_ingest_ack_failures_total") == 0
    row = await conn.fetchrow("SELECT acked_seq, newest_fix FROM device_acks")
    assert (row["acked_seq"], row["newest_fix"]) == (2, None)


async def test_a_replacement_tracker_starting_again_at_seq_0_loses_nothing(
    broker: Broker, database: str, conn: asyncpg.Connection, tmp_path: Path
) -> None:
    from app.devices import issue, revoke

    await add_town(conn)
    async with conn.transaction():
        await issue(conn, "kouvola", "plow-1", None, with_mqtt=False)
    start = datetime.now(UTC) - timedelta(hours=1)
    async with ingester(make_settings(database, broker.port)):
        old = device(broker, "plow-1", tmp_path / "old", resend_after_s=60.0)
        try:
            for i in range(50):
                old.send(fix(i, start))
            assert await asyncio.to_thread(old.wait_all_acked, 20)
        finally:
            old.stop()
        # The tracker is replaced: new credentials, a new device counting from 0. The
        # broker still holds the retained ack {"seq": 49} of the old one.
        await revoke(conn, "kouvola", "plow-1")
        async with conn.transaction():
            await issue(conn, "kouvola", "plow-1", None, with_mqtt=False)
        new = device(broker, "plow-1", tmp_path / "new", resend_after_s=3.0)
        try:
            for i in range(10):
                new.send(fix(100 + i, start))
            assert await asyncio.to_thread(new.wait_all_acked, 30), (new.acked_seq,
                                                                    new.unacked)
        finally:
            new.stop()
    assert await conn.fetchval("SELECT count(*) FROM pings") == 60
    assert await conn.fetchval("SELECT acked_seq FROM device_acks") == 9


async def test_a_batch_failing_without_an_outage_is_isolated_not_retried_forever(
    broker: Broker, database: str, conn: asyncpg.Connection, tmp_path: Path
) -> None:
    await add_town(conn)
    # The database is up but refuses one fix with "out of shared memory" (SQLSTATE 53200,
    # the class an outage can also raise) every time it is written.
    await conn.execute(
        """CREATE FUNCTION oom() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN IF NEW.seq = 1 THEN
               RAISE EXCEPTION 'out of shared memory' USING ERRCODE = '53200';
           END IF; RETURN NEW; END $$;
           CREATE TRIGGER oom BEFORE INSERT ON pings FOR EACH ROW EXECUTE FUNCTION oom();""")
    start = datetime.now(UTC) - timedelta(hours=1)
    settings = make_settings(database, broker.port, isolate_after_retries=2)
    async with ingester(settings) as worker:
        d = device(broker, "plow-1", tmp_path, resend_after_s=60.0)
        try:
            for i in range(3):
                d.send(fix(i, start))
            # Settled: two stored, the refused one quarantined — and acknowledged.
            assert await asyncio.to_thread(d.wait_all_acked, 30), (d.acked_seq, d.unacked)
        finally:
            d.stop()
        assert (worker.metrics.registry.get_sample_value(
            "plowshare_ingest_retries_total") or 0) >= 2
    assert await conn.fetchval("SELECT array_agg(seq ORDER BY seq) FROM pings") == [0, 2]
    # (the device may have sent it twice: once live, once re-sent on connecting)
    assert await conn.fetchval(
        "SELECT array_agg(DISTINCT reason) FROM rejected_pings WHERE seq = 1") == [
        "store_failed"]
