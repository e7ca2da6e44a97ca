"""Helpers for the residents' side tests: a small town with named streets, vehicles, and
service passes recorded through the same code path the live matcher uses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg

from app import live
from tests.support import add_town

# A small grid east of Kouvola's centre. (source_id, name, priority, WKT)
STREETS = [
    ("k1", "Kauppalankatu", 1, "LINESTRING(26.700 60.866, 26.706 60.866)"),
    ("k2", "Kauppalankatu", 1, "LINESTRING(26.706 60.866, 26.712 60.866)"),
    ("s1", "Salpausselänkatu", 2, "LINESTRING(26.703 60.862, 26.703 60.866)"),
    ("f1", "Fifth Avenue", 3, "LINESTRING(26.709 60.862, 26.709 60.866)"),
    ("o1", "Oak Street", 3, "LINESTRING(26.700 60.869, 26.706 60.869)"),
    ("o2", "Oak Street", 3, "LINESTRING(26.706 60.869, 26.712 60.869)"),
    ("r1", "Rue de l'Église", 4, "LINESTRING(26.712 60.862, 26.712 60.866)"),
]
# Address ranges of Oak Street's blocks, as Syracuse's data has them.
ADDRESSES = [("o1", 101, 199, 100, 198), ("o2", 201, 299, 200, 298)]


async def seed_town(conn: asyncpg.Connection, slug: str = "kouvola",
                    name: str = "Kouvola") -> tuple[int, dict[str, int]]:
    """The town and its streets; returns (town id, {source_id: segment id})."""
    town = await add_town(conn, slug, name)
    ids: dict[str, int] = {}
    for source, street, priority, wkt in STREETS:
        ids[source] = await conn.fetchval(
            """INSERT INTO street_segments (town_id, source_id, name, road_class, oneway,
                   length_m, priority, geom)
               VALUES ($1, $2, $3, 'residential', false,
                       ST_Length(ST_GeomFromText($4, 4326)::geography), $5,
                       ST_GeomFromText($4, 4326))
               RETURNING id""", town, source, street, wkt, priority)
    await conn.executemany(
        """INSERT INTO segment_addresses (town_id, source_id, left_from, left_to,
               right_from, right_to) VALUES ($1, $2, $3, $4, $5, $6)""",
        [(town, *a) for a in ADDRESSES])
    return town, ids


async def add_vehicle(conn: asyncpg.Connection, town: int, ident: str) -> int:
    vehicle: int = await conn.fetchval(
        "INSERT INTO vehicles (town_id, ident, label) VALUES ($1, $2, $2) RETURNING id",
        town, ident)
    return vehicle


_PASS = """
INSERT INTO segment_services (town_id, segment_id, vehicle_id, storm_id, forward, started_at,
                              ended_at, fraction, plowed, salted, confidence)
SELECT $1, $2, $3,
       (SELECT s.id FROM storms s WHERE s.town_id = $1 AND s.started_at <= $5
           AND (s.ended_at IS NULL OR s.ended_at > $5) ORDER BY s.started_at DESC LIMIT 1),
       true, $4, $5, 1.0, $6, $7, $8
RETURNING coalesce(storm_id, 0)"""

_STATUS = """
INSERT INTO segment_status AS st (town_id, segment_id, storm_key, first_service, last_service,
                                  passes, last_plowed, last_salted, last_vehicle_id,
                                  last_confidence)
VALUES ($1, $2, $3, $4, $5, 1, CASE WHEN $6 THEN $5::timestamptz END,
        CASE WHEN $7 THEN $5::timestamptz END, $8, $9)
ON CONFLICT (segment_id, storm_key) DO UPDATE SET
    first_service = least(st.first_service, EXCLUDED.first_service),
    last_service = greatest(st.last_service, EXCLUDED.last_service),
    passes = st.passes + 1,
    last_plowed = greatest(st.last_plowed, EXCLUDED.last_plowed),
    last_salted = greatest(st.last_salted, EXCLUDED.last_salted)
RETURNING segment_id, storm_key, first_service, last_service, passes, last_plowed,
          last_salted"""


async def serve(conn: asyncpg.Connection, town: int, slug: str, segment: int, vehicle: int,
                ended_at: datetime, *, plowed: bool = True, salted: bool = False,
                confidence: float = 0.9) -> None:
    """Record one service pass as ingest.coverage_store.record_services does: evidence
    row, status row and a ``segments`` NOTIFY to map clients, in one transaction.

    A mirror rather than a call: record_services, as it stands in the working tree, fails
    to prepare its status upsert ($5 deduced as both text and timestamptz; it needs
    ``$5::timestamptz`` in the CASEs). test_public_feed holds a strict xfail that calls
    the real one, so the day it works this helper can become a call."""
    started = ended_at - timedelta(seconds=40)
    async with conn.transaction():
        key = await conn.fetchval(_PASS, town, segment, vehicle, started, ended_at, plowed,
                                  salted, confidence)
        row = await conn.fetchrow(_STATUS, town, segment, key, started, ended_at, plowed,
                                  salted, vehicle, confidence)
        await live.notify(conn, live.encode_messages(slug, "segments", [status_item(row)]))


def status_item(row: asyncpg.Record) -> dict[str, object]:
    """The live ``segments`` item, field for field as the matcher sends it."""
    def iso(t: datetime | None) -> str | None:
        return t.isoformat() if t else None

    return {"id": row["segment_id"], "storm": row["storm_key"] or None,
            "first_service": iso(row["first_service"]), "last_service": iso(row["last_service"]),
            "passes": row["passes"], "last_plowed": iso(row["last_plowed"]),
            "last_salted": iso(row["last_salted"])}


def ago(**kw: float) -> datetime:
    return datetime.now(UTC) - timedelta(**kw)
