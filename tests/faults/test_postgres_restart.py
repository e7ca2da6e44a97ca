"""PostgreSQL restarted under load, on a private cluster of this test (the machine's
shared server is left alone): the ingester retries, the broker holds messages, and the
devices' fixes are stored exactly once."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from app.broker import Broker, free_port
from app.db import connect
from app.migrate import migrate
from app.settings import DatabaseSettings
from tests.faults.test_delivery import assert_exactly_once, device, ingester, send_paced
from tests.support import add_town, make_settings

PG_BIN = Path("/usr/lib/postgresql/15/bin")


@dataclass
class Cluster:
    root: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql://plowshare@127.0.0.1:{self.port}/plowshare"

    def ctl(self, *args: str) -> None:
        as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run([*as_postgres, str(PG_BIN / "pg_ctl"), "-D", str(self.root / "data"),
                        "-l", str(self.root / "log"), "-w", *args],
                       check=True, capture_output=True, timeout=60)


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    if not (PG_BIN / "initdb").exists():
        pytest.fail("PostgreSQL 15 server binaries are missing: run `make setup`",
                    pytrace=False)
    root = Path(tempfile.mkdtemp(prefix="plowshare-pg-", dir="/tmp"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")  # PostgreSQL refuses to run as root
    port = free_port()
    c = Cluster(root, port)
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    subprocess.run([*as_postgres, str(PG_BIN / "initdb"), "-D", str(root / "data"),
                    "-A", "trust", "-U", "plowshare", "--no-sync"],
                   check=True, capture_output=True, timeout=120)
    opts = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    c.ctl("-o", opts, "start")
    try:
        yield c
    finally:
        c.ctl("-m", "immediate", "stop")
        shutil.rmtree(root, ignore_errors=True)


async def test_postgres_restart_under_load(
    cluster: Cluster, broker: Broker, tmp_path: Path
) -> None:
    admin = await asyncpg.connect(f"postgresql://plowshare@127.0.0.1:{cluster.port}/postgres")
    await admin.execute("CREATE DATABASE plowshare")
    await admin.close()
    conn = await connect(DatabaseSettings(url=cluster.url))
    await migrate(conn, Path(__file__).resolve().parents[2] / "migrations")
    await add_town(conn)
    await conn.close()

    n = 2000
    start = datetime.now(UTC) - timedelta(hours=1)
    settings = make_settings(cluster.url, broker.port)
    async with ingester(settings):
        d = device(broker, "plow-1", tmp_path, resend_after_s=3.0)
        try:
            sender = threading.Thread(target=send_paced, args=(d, start, 0, n, 400.0))
            sender.start()
            await asyncio.sleep(1.5)
            await asyncio.to_thread(cluster.ctl, "-m", "fast", "restart")
            await asyncio.to_thread(sender.join, 60)
            assert await asyncio.to_thread(d.wait_all_acked, 90), d.unacked
        finally:
            d.stop()
    conn = await connect(DatabaseSettings(url=cluster.url))
    try:
        await assert_exactly_once(conn, "plow-1", n)
        # The restart really happened in the middle of the load.
        restarted = await conn.fetchval("SELECT pg_postmaster_start_time()")
        before, after = await conn.fetchrow(
            "SELECT count(*) FILTER (WHERE received_at < $1), "
            "count(*) FILTER (WHERE received_at > $1) FROM pings", restarted)
        assert before > 0 and after > 0, (before, after)
    finally:
        await conn.close()
