"""Shared fixtures: real PostgreSQL+PostGIS databases and real Mosquitto brokers.

A test never skips because a service is missing: the fixture fails and says why.
Databases are created per test from a migrated template (fast), and dropped afterwards.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from app.broker import Broker, free_port
from app.db import connect, create_pool
from app.dbadmin import create_database, drop_database
from app.migrate import migrate
from app.settings import DatabaseSettings
from tests.support import ADMIN_URL, db_url

REPO = Path(__file__).resolve().parents[1]
@pytest.fixture(scope="session")
async def template_db() -> AsyncIterator[str]:
    name = f"plowshare_tmpl_{secrets.token_hex(4)}"
    url = db_url(name)
    try:
        await create_database(url)
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.fail(
            f"PostgreSQL is not reachable at {ADMIN_URL} ({exc}); run `make setup` "
            "(scripts/setup.sh installs and starts PostgreSQL 15 + PostGIS)",
            pytrace=False,
        )
    conn = await connect(DatabaseSettings(url=url))
    try:
        await migrate(conn, REPO / "migrations")
    finally:
        await conn.close()
    yield name
    await drop_database(url)


@pytest.fixture
async def database(template_db: str) -> AsyncIterator[str]:
    """URL of a fresh, migrated, empty database for this test."""
    name = f"plowshare_test_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(ADMIN_URL)
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
    finally:
        await admin.close()
    url = db_url(name)
    yield url
    await drop_database(url)


@pytest.fixture
async def conn(database: str) -> AsyncIterator[asyncpg.Connection]:
    c = await connect(DatabaseSettings(url=database))
    yield c
    await c.close()


@pytest.fixture
async def pool(database: str) -> AsyncIterator[asyncpg.Pool]:
    p = await create_pool(DatabaseSettings(url=database))
    yield p
    await p.close()


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    """A private Mosquitto with plowshare's configuration on a free port."""
    b = Broker(port=free_port(), data_dir=tmp_path / "mosquitto")
    try:
        b.start()
    except RuntimeError as exc:
        pytest.fail(f"cannot start Mosquitto: {exc}", pytrace=False)
    yield b
    b.stop()


