"""Database side of live coverage: which vehicles have fixes not yet matched, the fixes
themselves in fix-time order, and recording service passes with per-storm status."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from app import live


@dataclass(frozen=True, slots=True)
class PendingVehicle:
    vehicle_id: int
    ident: str
    fed_until: datetime | None


@dataclass(frozen=True, slots=True)
class Service:
    """One service pass, ready to store (segment as database id, times as datetimes)."""

    segment_id: int
    vehicle_id: int
    forward: bool
    started_at: datetime
    ended_at: datetime
    fraction: float
    plowed: bool
    salted: bool
    confidence: float


async def segment_signature(conn: asyncpg.Connection, town_id: int) -> tuple[int, int]:
    """Changes whenever an import adds or retires segments of the town."""
    row = await conn.fetchrow(
        """SELECT count(*) FILTER (WHERE valid_to IS NULL) AS n, coalesce(max(id), 0) AS top
             FROM street_segments WHERE town_id = $1""", town_id)
    return int(row["n"]), int(row["top"])


async def pending_vehicles(conn: asyncpg.Connection, town_id: int) -> list[PendingVehicle]:
    rows = await conn.fetch(
        """SELECT vp.vehicle_id, v.ident, c.fed_until
             FROM vehicle_positions vp
             JOIN vehicles v ON v.id = vp.vehicle_id
             LEFT JOIN coverage_cursors c ON c.vehicle_id = vp.vehicle_id
            WHERE vp.town_id = $1 AND (c.fed_until IS NULL OR vp.fix_time > c.fed_until)
            ORDER BY vp.vehicle_id""", town_id)
    return [PendingVehicle(r["vehicle_id"], r["ident"], r["fed_until"]) for r in rows]


async def fixes_after(
    conn: asyncpg.Connection, vehicle_id: int, after: datetime | None, until: datetime,
    limit: int,
) -> list[asyncpg.Record]:
    """The vehicle's fixes in (after, until], oldest first (uses the pings primary key)."""
    rows: list[asyncpg.Record] = await conn.fetch(
        """SELECT fix_time, ST_X(geom) AS lon, ST_Y(geom) AS lat, speed_mps, heading_deg,
                  accuracy_m, plow_down, spreader_on
             FROM pings
            WHERE vehicle_id = $1 AND fix_time > coalesce($2, '-infinity'::timestamptz)
              AND fix_time <= $3
            ORDER BY fix_time LIMIT $4""", vehicle_id, after, until, limit)
    return rows


async def late_fixes(conn: asyncpg.Connection, town_id: int, limit: int
                     ) -> list[asyncpg.Record]:
    """Fixes stored behind a vehicle's cursor, oldest first per vehicle."""
    rows: list[asyncpg.Record] = await conn.fetch(
        """SELECT l.vehicle_id, v.ident, p.fix_time, ST_X(p.geom) AS lon, ST_Y(p.geom) AS lat,
                  p.speed_mps, p.heading_deg, p.accuracy_m, p.plow_down, p.spreader_on
             FROM coverage_late l
             JOIN vehicles v ON v.id = l.vehicle_id
             JOIN pings p ON p.vehicle_id = l.vehicle_id AND p.fix_time = l.fix_time
            WHERE l.town_id = $1
            ORDER BY l.vehicle_id, l.fix_time LIMIT $2""", town_id, limit)
    return rows


async def forget_late(conn: asyncpg.Connection, rows: Sequence[asyncpg.Record]) -> None:
    await conn.execute(
        """DELETE FROM coverage_late l USING unnest($1::bigint[], $2::timestamptz[])
                 AS t(vehicle_id, fix_time)
            WHERE l.vehicle_id = t.vehicle_id AND l.fix_time = t.fix_time""",
        [r["vehicle_id"] for r in rows], [r["fix_time"] for r in rows])


async def advance_cursor(
    conn: asyncpg.Connection, vehicle_id: int, town_id: int, fed_until: datetime
) -> None:
    await conn.execute(
        """INSERT INTO coverage_cursors (vehicle_id, town_id, fed_until) VALUES ($1, $2, $3)
           ON CONFLICT (vehicle_id) DO UPDATE
              SET fed_until = greatest(coverage_cursors.fed_until, EXCLUDED.fed_until),
                  updated_at = now()""", vehicle_id, town_id, fed_until)


_RECORD = """
WITH new AS (
    INSERT INTO segment_services (town_id, segment_id, vehicle_id, storm_id, forward,
                                  started_at, ended_at, fraction, plowed, salted, confidence)
    SELECT $1, t.segment_id, t.vehicle_id,
           (SELECT s.id FROM storms s
             WHERE s.town_id = $1 AND s.started_at <= t.ended_at
               AND (s.ended_at IS NULL OR s.ended_at > t.ended_at)
             ORDER BY s.started_at DESC LIMIT 1),
           t.forward, t.started_at, t.ended_at, t.fraction, t.plowed, t.salted, t.confidence
      FROM unnest($2::bigint[], $3::bigint[], $4::boolean[], $5::timestamptz[],
                  $6::timestamptz[], $7::real[], $8::boolean[], $9::boolean[], $10::real[])
           AS t(segment_id, vehicle_id, forward, started_at, ended_at, fraction, plowed,
                salted, confidence)
    ON CONFLICT (segment_id, vehicle_id, forward, started_at) DO NOTHING
    RETURNING segment_id, vehicle_id, coalesce(storm_id, 0) AS storm_key, started_at,
              ended_at, plowed, salted, confidence
)
SELECT * FROM new ORDER BY segment_id, storm_key, ended_at
"""

_STATUS = """
INSERT INTO segment_status AS st (town_id, segment_id, storm_key, first_service, last_service,
                                  passes, last_plowed, last_salted, last_vehicle_id,
                                  last_confidence)
VALUES ($1::bigint, $2::bigint, $3::bigint, $4::timestamptz, $5::timestamptz, 1,
        CASE WHEN $6::boolean THEN $5::timestamptz END,
        CASE WHEN $7::boolean THEN $5::timestamptz END, $8::bigint, $9::real)
ON CONFLICT (segment_id, storm_key) DO UPDATE SET
    first_service = least(st.first_service, EXCLUDED.first_service),
    last_service = greatest(st.last_service, EXCLUDED.last_service),
    passes = st.passes + 1,
    last_plowed = greatest(st.last_plowed, EXCLUDED.last_plowed),
    last_salted = greatest(st.last_salted, EXCLUDED.last_salted),
    last_vehicle_id = CASE WHEN EXCLUDED.last_service >= st.last_service
                           THEN EXCLUDED.last_vehicle_id ELSE st.last_vehicle_id END,
    last_confidence = CASE WHEN EXCLUDED.last_service >= st.last_service
                           THEN EXCLUDED.last_confidence ELSE st.last_confidence END
RETURNING segment_id, storm_key, first_service, last_service, passes, last_plowed,
          last_salted
"""


async def record_services(
    conn: asyncpg.Connection, town_id: int, town: str, services: Sequence[Service]
) -> int:
    """Store new passes, update status, and tell map clients. Returns passes stored."""
    if not services:
        return 0
    new = await conn.fetch(
        _RECORD, town_id,
        [s.segment_id for s in services], [s.vehicle_id for s in services],
        [s.forward for s in services], [s.started_at for s in services],
        [s.ended_at for s in services], [s.fraction for s in services],
        [s.plowed for s in services], [s.salted for s in services],
        [s.confidence for s in services])
    changed: dict[tuple[int, int], dict[str, Any]] = {}
    for r in new:
        row = await conn.fetchrow(
            _STATUS, town_id, r["segment_id"], r["storm_key"], r["started_at"],
            r["ended_at"], r["plowed"], r["salted"], r["vehicle_id"], r["confidence"])
        changed[(row["segment_id"], row["storm_key"])] = status_item(row)
    if changed:
        await live.notify(conn, live.encode_messages(town, "segments", list(changed.values())))
    return len(new)


def status_item(row: asyncpg.Record) -> dict[str, Any]:
    """A segment's status as live messages and the streets API carry it."""
    return {
        "id": row["segment_id"],
        "storm": row["storm_key"] or None,
        "first_service": row["first_service"].isoformat(),
        "last_service": row["last_service"].isoformat(),
        "passes": row["passes"],
        "last_plowed": row["last_plowed"].isoformat() if row["last_plowed"] else None,
        "last_salted": row["last_salted"].isoformat() if row["last_salted"] else None,
    }
