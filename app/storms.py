"""Storms: "this storm" is what residents' status counts from. One running per town."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from app.errors import InvalidInput, NotFound


@dataclass(frozen=True)
class Storm:
    id: int
    town: str
    name: str | None
    started_at: datetime
    ended_at: datetime | None


def _storm(row: asyncpg.Record) -> Storm:
    return Storm(row["id"], row["slug"], row["name"], row["started_at"], row["ended_at"])


async def start_storm(
    conn: asyncpg.Connection, town: str, name: str | None = None,
    at: datetime | None = None,
) -> Storm:
    async with conn.transaction():
        town_id = await conn.fetchval("SELECT id FROM towns WHERE slug = $1", town)
        if town_id is None:
            raise NotFound(f"no town '{town}'")
        try:
            row = await conn.fetchrow(
                """INSERT INTO storms (town_id, name, started_at)
                   VALUES ($1, $2, coalesce($3, now()))
                   RETURNING id, $4::text AS slug, name, started_at, ended_at""",
                town_id, name, at, town)
        except asyncpg.UniqueViolationError:
            raise InvalidInput(f"a storm is already running in '{town}'") from None
    return _storm(row)


async def end_storm(conn: asyncpg.Connection, town: str, at: datetime | None = None) -> Storm:
    row = await conn.fetchrow(
        """UPDATE storms s SET ended_at = coalesce($2, now())
             FROM towns t
            WHERE t.id = s.town_id AND t.slug = $1 AND s.ended_at IS NULL
        RETURNING s.id, t.slug, s.name, s.started_at, s.ended_at""",
        town, at)
    if row is None:
        raise NotFound(f"no storm is running in '{town}'")
    return _storm(row)


async def current_or_last(conn: asyncpg.Connection, town_id: int) -> asyncpg.Record | None:
    """The running storm, else the most recently started one."""
    row: asyncpg.Record | None = await conn.fetchrow(
        """SELECT id, name, started_at, ended_at FROM storms WHERE town_id = $1
            ORDER BY (ended_at IS NULL) DESC, started_at DESC LIMIT 1""",
        town_id)
    return row
