"""Retention of raw data: ping partitions and quarantined messages older than the
configured number of days are removed; coverage history is kept."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetentionResult:
    dropped_partitions: list[str]
    deleted_rejections: int


async def apply_retention(
    conn: asyncpg.Connection, days: int, now: datetime | None = None
) -> RetentionResult:
    keep_from = (now or datetime.now(UTC)) - timedelta(days=days)
    dropped = [r[0] for r in await conn.fetch(
        "SELECT plowshare_drop_ping_partitions($1)", keep_from)]
    deleted = 0
    while True:
        # Small batches: a long DELETE would hold locks the ingester needs.
        n = await conn.fetchval(
            """WITH d AS (DELETE FROM rejected_pings WHERE id IN (
                   SELECT id FROM rejected_pings WHERE received_at < $1 LIMIT 10000)
                 RETURNING 1)
               SELECT count(*) FROM d""", keep_from)
        deleted += n
        if n < 10000:
            break
    if dropped or deleted:
        log.info("retention: dropped %s, deleted %d quarantined messages", dropped, deleted)
    return RetentionResult(dropped, deleted)


_LOCK = 0x7265746E  # "retn": one worker at a time applies retention


async def retention_loop(pool: asyncpg.Pool, days: int, every_s: float = 3600.0) -> None:
    """Apply retention now and then every ``every_s``; survives database outages."""
    while True:
        try:
            async with pool.acquire() as conn:
                if await conn.fetchval("SELECT pg_try_advisory_lock($1)", _LOCK):
                    try:
                        await apply_retention(conn, days)
                    finally:
                        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("retention round failed: %s", exc)
        await asyncio.sleep(every_s)
