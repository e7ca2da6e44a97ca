"""The asyncpg pool, with JSON codecs registered once per connection (tipg's habit)."""

from __future__ import annotations

from typing import Any

import asyncpg
import orjson

from app.settings import DatabaseSettings


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


async def init_connection(conn: asyncpg.Connection) -> None:
    for typename in ("json", "jsonb"):
        await conn.set_type_codec(
            typename, encoder=_dumps, decoder=orjson.loads, schema="pg_catalog"
        )


async def create_pool(settings: DatabaseSettings) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        settings.url,
        min_size=settings.pool_min,
        max_size=settings.pool_max,
        command_timeout=settings.command_timeout_s,
        init=init_connection,
    )
    assert pool is not None
    return pool


async def connect(settings: DatabaseSettings) -> asyncpg.Connection:
    conn: asyncpg.Connection = await asyncpg.connect(
        settings.url, command_timeout=settings.command_timeout_s
    )
    await init_connection(conn)
    return conn
