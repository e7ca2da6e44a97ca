"""Load a street network into ``street_segments`` for one town.

A re-import compares by ``source_id``: unchanged segments keep their row (and the coverage
history attached to it); changed ones (geometry, name, class, one-way, priority, or the
nodes that join them to the network) are retired (``valid_to``) and inserted anew;
segments no longer in the source are retired.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import asyncpg

from geo.network import Segment

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImportResult:
    added: int
    unchanged: int
    retired: int


_STAGE = """
CREATE TEMP TABLE import_segments (
    source_id text PRIMARY KEY, name text, road_class text, oneway boolean,
    length_m double precision, priority smallint, start_node text, end_node text,
    wkt text NOT NULL, geom geometry(LineString, 4326)
) ON COMMIT DROP
"""


async def import_segments(
    conn: asyncpg.Connection, town_id: int, segments: Sequence[Segment],
    progress: Callable[[str], None] | None = None,
) -> ImportResult:
    say = progress or (lambda _m: None)
    t0 = time.monotonic()
    async with conn.transaction():
        # One import per town at a time.
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('import'), $1::int)",
                           town_id)
        await conn.execute(_STAGE)
        await conn.copy_records_to_table(
            "import_segments",
            records=[
                (s.source_id, s.name, s.road_class, s.oneway, s.length_m, s.priority,
                 s.start_node, s.end_node, _wkt(s))
                for s in segments
            ],
            columns=["source_id", "name", "road_class", "oneway", "length_m", "priority",
                     "start_node", "end_node", "wkt"],
        )
        await conn.execute("UPDATE import_segments SET geom = ST_GeomFromEWKT(wkt)")
        say(f"{len(segments):,} segments staged ({time.monotonic() - t0:.1f}s); "
            "comparing with the town's current network …")
        same = """s.source_id = i.source_id AND s.name IS NOT DISTINCT FROM i.name
                  AND s.road_class = i.road_class AND s.oneway = i.oneway
                  AND s.priority = i.priority AND ST_Equals(s.geom, i.geom)
                  AND ST_OrderingEquals(s.geom, i.geom)
                  AND s.start_node IS NOT DISTINCT FROM i.start_node
                  AND s.end_node IS NOT DISTINCT FROM i.end_node"""
        retired = await conn.fetchval(
            f"""WITH r AS (
                  UPDATE street_segments s SET valid_to = now()
                   WHERE s.town_id = $1 AND s.valid_to IS NULL
                     AND NOT EXISTS (SELECT 1 FROM import_segments i WHERE {same})
                  RETURNING 1)
                SELECT count(*) FROM r""",
            town_id,
        )
        say(f"{retired:,} retired (changed or gone) ({time.monotonic() - t0:.1f}s); "
            "adding new and changed segments …")
        added = await conn.fetchval(
            """WITH a AS (
                 INSERT INTO street_segments (town_id, source_id, name, road_class, oneway,
                        length_m, priority, start_node, end_node, geom)
                 SELECT $1, i.source_id, i.name, i.road_class, i.oneway, i.length_m,
                        i.priority, i.start_node, i.end_node, i.geom
                   FROM import_segments i
                  WHERE NOT EXISTS (SELECT 1 FROM street_segments s
                                     WHERE s.town_id = $1 AND s.valid_to IS NULL
                                       AND s.source_id = i.source_id)
                 RETURNING 1)
               SELECT count(*) FROM a""",
            town_id,
        )
    unchanged = len(segments) - added
    log.info("import town %d: %d added, %d unchanged, %d retired", town_id, added,
             unchanged, retired)
    return ImportResult(added=added, unchanged=unchanged, retired=retired)


def _wkt(s: Segment) -> str:
    # COPY takes the geometry as EWKT text; PostGIS parses it.
    return "SRID=4326;LINESTRING(" + ",".join(f"{x!r} {y!r}" for x, y in s.coords) + ")"


async def town_segments(conn: asyncpg.Connection, town_id: int) -> list[tuple[int, Segment]]:
    """The town's current segments as (database id, geo Segment), ordered by id: what the
    matcher and the simulator work on."""
    from shapely import from_wkb

    rows = await conn.fetch(
        """SELECT id, source_id, name, road_class, oneway, length_m, priority,
                  coalesce(start_node, ST_AsText(ST_StartPoint(geom))) AS start_node,
                  coalesce(end_node, ST_AsText(ST_EndPoint(geom))) AS end_node,
                  ST_AsBinary(geom) AS wkb
             FROM street_segments WHERE town_id = $1 AND valid_to IS NULL
            ORDER BY id""", town_id)
    return [
        (r["id"], Segment(
            source_id=r["source_id"], name=r["name"], road_class=r["road_class"],
            oneway=r["oneway"], coords=tuple(from_wkb(r["wkb"]).coords),
            length_m=r["length_m"], priority=r["priority"], start_node=r["start_node"],
            end_node=r["end_node"]))
        for r in rows
    ]
