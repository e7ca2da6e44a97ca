"""Migrations: fresh database, re-run, concurrent runs, and refusing edited history."""

from __future__ import annotations

import asyncio
import secrets
import shutil
from pathlib import Path

import asyncpg
import pytest

from app.dbadmin import create_database, drop_database
from app.migrate import MigrationError, migrate
from tests.support import db_url

REPO = Path(__file__).resolve().parents[2]
MIGRATIONS = REPO / "migrations"


@pytest.fixture
async def empty_db() -> str:
    url = db_url(f"plowshare_mig_{secrets.token_hex(5)}")
    assert await create_database(url)
    assert not await create_database(url)  # idempotent
    yield url  # type: ignore[misc]
    await drop_database(url)


async def tables(conn: asyncpg.Connection) -> set[str]:
    rows = await conn.fetch(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    return {r["tablename"] for r in rows}


async def test_fresh_then_rerun(empty_db: str) -> None:
    conn = await asyncpg.connect(empty_db)
    try:
        applied = await migrate(conn, MIGRATIONS)
        assert applied == sorted(p.name for p in MIGRATIONS.glob("*.sql"))
        assert {"towns", "street_segments", "vehicles", "pings", "vehicle_positions",
                "rejected_pings", "schema_migrations"} <= await tables(conn)
        assert await conn.fetchval("SELECT postgis_lib_version()") >= "3"
        assert await migrate(conn, MIGRATIONS) == []
        assert await conn.fetchval("SELECT count(*) FROM schema_migrations") == len(applied)
    finally:
        await conn.close()


async def test_concurrent_runs_apply_once(empty_db: str) -> None:
    conns = [await asyncpg.connect(empty_db) for _ in range(3)]
    try:
        results = await asyncio.gather(*(migrate(c, MIGRATIONS) for c in conns))
        assert sorted(len(r) for r in results)[-1] == len(list(MIGRATIONS.glob("*.sql")))
        assert sum(len(r) for r in results) == len(list(MIGRATIONS.glob("*.sql")))
    finally:
        for c in conns:
            await c.close()


async def test_edited_migration_is_refused_and_failed_one_rolls_back(
    empty_db: str, tmp_path: Path
) -> None:
    mdir = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS, mdir)
    conn = await asyncpg.connect(empty_db)
    try:
        await migrate(conn, mdir)
        (mdir / "9000_broken.sql").write_text(
            "CREATE TABLE half_done (id int);\nSELECT no_such_function();\n")
        with pytest.raises(asyncpg.UndefinedFunctionError):
            await migrate(conn, mdir)
        assert "half_done" not in await tables(conn)  # the transaction rolled back
        (mdir / "9000_broken.sql").unlink()
        first = sorted(mdir.glob("*.sql"))[0]
        first.write_text(first.read_text() + "\n-- edited\n")
        with pytest.raises(MigrationError, match="changed after it was applied"):
            await migrate(conn, mdir)
        (mdir / "bad-name.sql").write_text("SELECT 1;")
        with pytest.raises(MigrationError, match="must look like"):
            await migrate(conn, mdir)
    finally:
        await conn.close()
