"""Retention drops whole days of raw pings and old quarantine; coverage history stays."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import orjson
import pytest
from pydantic import ValidationError

from app.db import create_pool
from app.settings import DatabaseSettings, IngestSettings
from ingest.metrics import IngestMetrics
from ingest.model import Message
from ingest.pipeline import Pipeline
from ingest.retention import apply_retention
from tests.support import add_town


async def test_old_days_are_dropped_and_recent_ones_kept(
    database: str, conn: asyncpg.Connection
) -> None:
    town = await add_town(conn)
    now = datetime.now(UTC)
    fixes = [{"time": (now - timedelta(days=d, minutes=5)).isoformat(), "lat": 60.8,
              "lon": 26.7} for d in range(0, 12)]
    pool = await create_pool(DatabaseSettings(url=database))
    try:
        await Pipeline(IngestSettings(), IngestMetrics()).process(pool, [
            Message("plowshare/kouvola/plow-1/position", orjson.dumps(fixes), now),
            Message("plowshare/kouvola/plow-1/position", b"junk", now - timedelta(days=20)),
        ])
    finally:
        await pool.close()
    vehicle = await conn.fetchval("SELECT id FROM vehicles")
    segment = await conn.fetchval(
        """INSERT INTO street_segments (town_id, source_id, road_class, length_m, priority,
               geom) VALUES ($1, 'a', 'residential', 10, 3,
               ST_GeomFromText('LINESTRING(26.7 60.8, 26.7001 60.8)', 4326)) RETURNING id""",
        town)
    await conn.execute(
        """INSERT INTO segment_services (town_id, segment_id, vehicle_id, forward, started_at,
               ended_at, fraction, plowed, salted, confidence)
           VALUES ($1, $2, $3, true, $4, $4, 1, true, false, 0.9)""",
        town, segment, vehicle, now - timedelta(days=11))

    result = await apply_retention(conn, days=7, now=now)
    # Days wholly older than 7 days are gone; the day straddling the cut-off stays.
    cut = (now - timedelta(days=7)).date()
    assert result.dropped_partitions and all(
        datetime.strptime(p[7:], "%Y%m%d").date() < cut for p in result.dropped_partitions)
    oldest = await conn.fetchval("SELECT min(fix_time) FROM pings")
    assert oldest.date() >= cut
    assert await conn.fetchval("SELECT count(*) FROM pings WHERE fix_time >= $1",
                               now - timedelta(days=7)) == 7
    assert result.deleted_rejections == 1
    assert await conn.fetchval("SELECT count(*) FROM segment_services") == 1  # kept
    again = await apply_retention(conn, days=7, now=now)
    assert again.dropped_partitions == [] and again.deleted_rejections == 0


def test_retention_must_cover_the_accepted_age() -> None:
    with pytest.raises(ValidationError, match="retention_days must cover"):
        IngestSettings(retention_days=3, max_age_s=7 * 86400)
    assert IngestSettings(retention_days=30).retention_days == 30
