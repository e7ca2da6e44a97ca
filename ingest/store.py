"""The ingester's database work for one batch, all inside the caller's transaction.

Rows go in as arrays through ``unnest`` in one statement per table: as fast as COPY for
these batch sizes, and unlike COPY it can say ``ON CONFLICT DO NOTHING``, which is what
makes redelivered and replayed fixes idempotent.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

import asyncpg
import orjson

from ingest.model import Position, Rejection

_INSERT_PINGS = """
INSERT INTO pings (town_id, vehicle_id, fix_time, received_at, geom, speed_mps,
                   heading_deg, accuracy_m, plow_down, spreader_on, seq, raw, device_time)
SELECT t.town_id, t.vehicle_id, t.fix_time, t.received_at,
       ST_SetSRID(ST_MakePoint(t.lon, t.lat), 4326), t.speed_mps, t.heading_deg,
       t.accuracy_m, t.plow_down, t.spreader_on, t.seq, t.raw::jsonb, t.device_time
FROM unnest($1::bigint[], $2::bigint[], $3::timestamptz[], $4::timestamptz[],
            $5::float8[], $6::float8[], $7::real[], $8::real[], $9::real[],
            $10::boolean[], $11::boolean[], $12::bigint[], $13::text[], $14::timestamptz[])
     AS t(town_id, vehicle_id, fix_time, received_at, lon, lat, speed_mps, heading_deg,
          accuracy_m, plow_down, spreader_on, seq, raw, device_time)
ON CONFLICT (vehicle_id, fix_time) DO NOTHING
RETURNING vehicle_id, fix_time
"""

# Moves forward only: a late fix never replaces a newer one.
_UPSERT_LATEST = """
INSERT INTO vehicle_positions AS v (vehicle_id, town_id, fix_time, received_at, geom,
                                    speed_mps, heading_deg, accuracy_m, plow_down,
                                    spreader_on)
SELECT t.vehicle_id, t.town_id, t.fix_time, t.received_at,
       ST_SetSRID(ST_MakePoint(t.lon, t.lat), 4326), t.speed_mps, t.heading_deg,
       t.accuracy_m, t.plow_down, t.spreader_on
FROM unnest($1::bigint[], $2::bigint[], $3::timestamptz[], $4::timestamptz[],
            $5::float8[], $6::float8[], $7::real[], $8::real[], $9::real[],
            $10::boolean[], $11::boolean[])
     AS t(vehicle_id, town_id, fix_time, received_at, lon, lat, speed_mps, heading_deg,
          accuracy_m, plow_down, spreader_on)
ORDER BY t.vehicle_id
ON CONFLICT (vehicle_id) DO UPDATE
   SET fix_time = EXCLUDED.fix_time, received_at = EXCLUDED.received_at,
       geom = EXCLUDED.geom, speed_mps = EXCLUDED.speed_mps,
       heading_deg = EXCLUDED.heading_deg, accuracy_m = EXCLUDED.accuracy_m,
       plow_down = EXCLUDED.plow_down, spreader_on = EXCLUDED.spreader_on
 WHERE v.fix_time < EXCLUDED.fix_time
RETURNING vehicle_id
"""

_INSERT_REJECTED = """
INSERT INTO rejected_pings (town_id, town_slug, vehicle_ident, topic, reason, detail,
                            fix_index, payload, received_at, seq)
SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[],
                     $6::text[], $7::integer[], $8::bytea[], $9::timestamptz[],
                     $10::bigint[])
"""


async def ensure_partitions(
    conn: asyncpg.Connection, days: set[date], known: set[date]
) -> None:
    for day in sorted(days - known):
        await conn.execute("SELECT plowshare_ensure_ping_partitions($1, $1)", day)
        known.add(day)


async def insert_pings(
    conn: asyncpg.Connection, positions: Sequence[Position]
) -> set[tuple[int, datetime]]:
    """Insert; return the (vehicle_id, fix_time) keys that were new."""
    if not positions:
        return set()
    rows = await conn.fetch(
        _INSERT_PINGS,
        [p.town_id for p in positions],
        [p.vehicle_id for p in positions],
        [p.fix_time for p in positions],
        [p.received_at for p in positions],
        [p.lon for p in positions],
        [p.lat for p in positions],
        [p.speed_mps for p in positions],
        [p.heading_deg for p in positions],
        [p.accuracy_m for p in positions],
        [p.plow_down for p in positions],
        [p.spreader_on for p in positions],
        [p.seq for p in positions],
        [p.raw.decode() for p in positions],
        [p.device_time for p in positions],
    )
    return {(r["vehicle_id"], r["fix_time"]) for r in rows}


async def upsert_latest(conn: asyncpg.Connection, newest: Sequence[Position]) -> set[int]:
    """``newest`` holds at most one position per vehicle. Returns vehicles that moved on."""
    if not newest:
        return set()
    rows = await conn.fetch(
        _UPSERT_LATEST,
        [p.vehicle_id for p in newest],
        [p.town_id for p in newest],
        [p.fix_time for p in newest],
        [p.received_at for p in newest],
        [p.lon for p in newest],
        [p.lat for p in newest],
        [p.speed_mps for p in newest],
        [p.heading_deg for p in newest],
        [p.accuracy_m for p in newest],
        [p.plow_down for p in newest],
        [p.spreader_on for p in newest],
    )
    return {r["vehicle_id"] for r in rows}


async def insert_rejections(conn: asyncpg.Connection, rejections: Sequence[Rejection]) -> None:
    if not rejections:
        return
    await conn.execute(
        _INSERT_REJECTED,
        [r.town_id for r in rejections],
        [r.town for r in rejections],
        [r.vehicle for r in rejections],
        [r.topic for r in rejections],
        [r.reason for r in rejections],
        [r.detail for r in rejections],
        [r.index for r in rejections],
        [r.payload for r in rejections],
        [r.received_at for r in rejections],
        [seq_of(r.payload) for r in rejections],
    )


def seq_of(payload: bytes) -> int | None:
    """The device sequence number of a rejected single fix, when it carries a sane one
    (it settles that seq for end-to-end acknowledgements)."""
    if not payload.startswith(b"{"):
        return None
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    seq = doc.get("seq") if isinstance(doc, dict) else None
    if isinstance(seq, int) and not isinstance(seq, bool) and 0 <= seq < 2**63:
        return seq
    return None


async def mark_late_for_coverage(conn: asyncpg.Connection, stored: Sequence[Position]) -> None:
    """Note the stored fixes the coverage worker has already moved past, so it matches them
    separately instead of never."""
    if not stored:
        return
    await conn.execute(
        """INSERT INTO coverage_late (vehicle_id, fix_time, town_id)
           SELECT t.vehicle_id, t.fix_time, t.town_id
             FROM unnest($1::bigint[], $2::timestamptz[], $3::bigint[])
                  AS t(vehicle_id, fix_time, town_id)
             JOIN coverage_cursors c ON c.vehicle_id = t.vehicle_id
            WHERE t.fix_time <= c.fed_until
           ON CONFLICT DO NOTHING""",
        [p.vehicle_id for p in stored], [p.fix_time for p in stored],
        [p.town_id for p in stored])
