"""Create or drop a database named by a connection URL (set-up, demo and tests)."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import asyncpg

from app.sqlident import quote_ident


def split_database(url: str) -> tuple[str, str]:
    """Return (URL of the maintenance database 'postgres', database name)."""
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if not name:
        raise ValueError(f"database URL names no database: {url}")
    return urlunsplit(parts._replace(path="/postgres")), name


async def create_database(url: str) -> bool:
    """Create the database if missing; True when it was created."""
    admin_url, name = split_database(url)
    conn = await asyncpg.connect(admin_url)
    try:
        if await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            return False
        await conn.execute(f"CREATE DATABASE {quote_ident(name)}")
        return True
    finally:
        await conn.close()


async def drop_database(url: str) -> None:
    admin_url, name = split_database(url)
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {quote_ident(name)} WITH (FORCE)")
    finally:
        await conn.close()
