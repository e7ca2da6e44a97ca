"""Storms: one running per town, ended explicitly, and the CLI around them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from app.errors import InvalidInput, NotFound
from app.storms import current_or_last, end_storm, start_storm
from tests.support import add_town

PLOWSHARE = str(Path(sys.executable).with_name("plowshare"))


async def test_one_running_storm_per_town(conn: asyncpg.Connection) -> None:
    kouvola = await add_town(conn)
    await add_town(conn, "drammen", "Drammen")
    first = await start_storm(conn, "kouvola", "Blizzard")
    assert (await current_or_last(conn, kouvola))["id"] == first.id  # type: ignore[index]
    with pytest.raises(InvalidInput, match="already running"):
        await start_storm(conn, "kouvola")
    await start_storm(conn, "drammen")  # another town may have its own
    ended = await end_storm(conn, "kouvola")
    assert ended.id == first.id and ended.ended_at is not None
    with pytest.raises(NotFound):
        await end_storm(conn, "kouvola")
    second = await start_storm(conn, "kouvola")
    assert (await current_or_last(conn, kouvola))["id"] == second.id  # type: ignore[index]
    await end_storm(conn, "kouvola")
    last = await current_or_last(conn, kouvola)
    assert last is not None and last["id"] == second.id and last["ended_at"] is not None
    with pytest.raises(NotFound):
        await start_storm(conn, "atlantis")


async def test_storm_cli(database: str, conn: asyncpg.Connection) -> None:
    await add_town(conn)
    env = {**os.environ, "PLOWSHARE_DATABASE_URL": database}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([PLOWSHARE, *args], env=env, capture_output=True, text=True,
                              timeout=30)

    ok = run("storm", "start", "--town", "kouvola", "--name", "First snow")
    assert ok.returncode == 0 and "started in kouvola" in ok.stdout
    again = run("storm", "start", "--town", "kouvola")
    assert again.returncode == 2 and "already running" in again.stderr
    assert run("storm", "end", "--town", "kouvola").returncode == 0
    none = run("storm", "end", "--town", "kouvola")
    assert none.returncode == 2 and "no storm is running" in none.stderr
    assert await conn.fetchval("SELECT count(*) FROM storms WHERE ended_at IS NOT NULL") == 1
