"""Helpers for the residents' side tests: a small town with named streets, vehicles, and
service passes recorded through the same code path the live matcher uses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg

from ingest.coverage_store import Service, record_services
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


async def serve(conn: asyncpg.Connection, town: int, slug: str, segment: int, vehicle: int,
                ended_at: datetime, *, plowed: bool = True, salted: bool = False,
                confidence: float = 0.9) -> None:
    """Record one service pass through the live matcher's own store: evidence row,
    status row and a ``segments`` NOTIFY to map clients, in one transaction."""
    async with conn.transaction():
        await record_services(conn, town, slug, [Service(
            segment_id=segment, vehicle_id=vehicle, forward=True,
            started_at=ended_at - timedelta(seconds=40), ended_at=ended_at, fraction=1.0,
            plowed=plowed, salted=salted, confidence=confidence)])


def ago(**kw: float) -> datetime:
    return datetime.now(UTC) - timedelta(**kw)
