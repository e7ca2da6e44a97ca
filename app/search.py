"""Find my street: by name (typos, accents, "5th Ave" = "Fifth Avenue"), by address where
the town's data has address ranges ("123 Oak St"), and nearest to a point ("near me").

Names are compared by ``plowshare_search_key`` (migration 0003) with pg_trgm, so the
index and every query reduce names the same way, in one place.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import asyncpg

# Looser than pg_trgm's defaults (0.3 / 0.6): "Slaina" should still find "N Salina St".
SIMILARITY = 0.25
WORD_SIMILARITY = 0.5

# "123 Oak St", "123A Oak St", "123-125 Oak St", "123, Oak St". Not "5th Ave".
_ADDRESS = re.compile(r"^\s*(\d{1,6})(?:\s*-\s*\d{1,6})?[A-Za-z]?\s*,?\s+(\S.*?)\s*$")


@dataclass(frozen=True)
class Address:
    number: int
    street: str


def parse_address(query: str) -> Address | None:
    m = _ADDRESS.match(query)
    if not m or not re.search(r"[^\W\d_]", m.group(2)):
        return None
    return Address(int(m.group(1)), m.group(2))


async def _thresholds(conn: asyncpg.Connection) -> None:
    # Transaction-local: a pooled connection must not keep them.
    await conn.execute(
        "SELECT set_config('pg_trgm.similarity_threshold', $1, true),"
        "       set_config('pg_trgm.word_similarity_threshold', $2, true)",
        str(SIMILARITY), str(WORD_SIMILARITY))


_KEY = "SELECT plowshare_search_key($1)"
_SCORE = """greatest(similarity(plowshare_search_key(s.name), $2),
                     word_similarity($2, plowshare_search_key(s.name)))"""
_MATCH = """(plowshare_search_key(s.name) % $2 OR $2 <% plowshare_search_key(s.name))"""

_BY_NAME = f"""
SELECT s.name, count(*) AS blocks, min(s.priority) AS priority,
       max({_SCORE}) AS score,
       ARRAY[ST_XMin(ST_Extent(s.geom)), ST_YMin(ST_Extent(s.geom)),
             ST_XMax(ST_Extent(s.geom)), ST_YMax(ST_Extent(s.geom))] AS bbox
  FROM street_segments s
 WHERE s.town_id = $1 AND s.valid_to IS NULL AND s.name IS NOT NULL AND {_MATCH}
 GROUP BY s.name
 ORDER BY score DESC, s.name
 LIMIT $3
"""

# A number is on a side when it lies in that side's range; the side whose range has the
# number's parity (odd/even sides) ranks first.
_BY_ADDRESS = f"""
SELECT s.id, s.name, {_SCORE} AS score, side.name AS side,
       ARRAY[ST_XMin(s.geom), ST_YMin(s.geom), ST_XMax(s.geom), ST_YMax(s.geom)] AS bbox,
       ST_Y(ST_LineInterpolatePoint(s.geom, side.fraction)) AS lat,
       ST_X(ST_LineInterpolatePoint(s.geom, side.fraction)) AS lon
  FROM segment_addresses a
  JOIN street_segments s
    ON s.town_id = a.town_id AND s.source_id = a.source_id AND s.valid_to IS NULL
 CROSS JOIN LATERAL (VALUES ('left', a.left_from, a.left_to),
                            ('right', a.right_from, a.right_to)) AS r(name, f, t)
 CROSS JOIN LATERAL (
        SELECT r.name,
               CASE WHEN r.t = r.f THEN 0.5
                    ELSE greatest(0, least(1, ($3 - r.f)::float8 / (r.t - r.f))) END
                   AS fraction,
               (r.f % 2 = $3 % 2 AND r.t % 2 = $3 % 2) AS parity
        WHERE $3 BETWEEN least(r.f, r.t) AND greatest(r.f, r.t)) AS side
 WHERE a.town_id = $1 AND {_MATCH}
 ORDER BY score DESC, side.parity DESC, s.id
 LIMIT $4
"""

_NEAREST = """
WITH p AS (SELECT ST_SetSRID(ST_MakePoint($2, $3), 4326) AS g),
     near AS (SELECT s.id, s.name, s.geom FROM street_segments s, p
               WHERE s.town_id = $1 AND s.valid_to IS NULL
               ORDER BY s.geom <-> p.g LIMIT 8)
SELECT near.id, near.name, ST_Distance(near.geom::geography, p.g::geography) AS distance_m
  FROM near, p
 ORDER BY distance_m LIMIT 1
"""


async def search(conn: asyncpg.Connection, town: int, query: str,
                 limit: int) -> list[dict[str, Any]]:
    """Addresses first (when the query looks like one and the town has ranges), then
    streets by name."""
    results: list[dict[str, Any]] = []
    async with conn.transaction():
        await _thresholds(conn)
        address = parse_address(query)
        if address is not None:
            key = await conn.fetchval(_KEY, address.street)
            for r in await conn.fetch(_BY_ADDRESS, town, key, address.number, limit):
                results.append({
                    "kind": "address", "label": f"{address.number} {r['name']}",
                    "name": r["name"], "number": address.number, "segment": r["id"],
                    "side": r["side"], "score": round(float(r["score"]), 3),
                    "point": [round(r["lon"], 7), round(r["lat"], 7)],
                    "bbox": [round(v, 7) for v in r["bbox"]],
                })
            if results:
                return results[:1] + [r for r in results[1:] if r["name"] != results[0]["name"]]
        key = await conn.fetchval(_KEY, query)
        if not key:
            return []
        for r in await conn.fetch(_BY_NAME, town, key, limit):
            results.append({
                "kind": "street", "label": r["name"], "name": r["name"],
                "blocks": r["blocks"], "priority": r["priority"],
                "score": round(float(r["score"]), 3),
                "bbox": [round(v, 7) for v in r["bbox"]],
            })
    return results


async def nearest(conn: asyncpg.Connection, town: int, lon: float,
                  lat: float) -> tuple[int, str | None, float] | None:
    """The block nearest to a point, by PostGIS KNN on the index, ranked in metres."""
    row = await conn.fetchrow(_NEAREST, town, lon, lat)
    if row is None:
        return None
    return row["id"], row["name"], float(row["distance_m"])
