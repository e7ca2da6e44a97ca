"""Street status as Mapbox vector tiles, made by PostGIS (ST_AsMVT).

One layer, ``streets``: feature id = segment id (clients key live deltas on it with
feature-state), properties ``name``, ``priority``, ``passes`` and the times ``last``,
``plowed``, ``salted`` as epoch seconds (absent = never this storm). Colours are not in
the tile: "time since service" changes by the minute, so the page computes them.
"""

from __future__ import annotations

import asyncpg

from app.public_status import cutoff, status_join
from app.town_rules import TownRules

LAYER = "streets"
EXTENT = 4096
BUFFER = 64
MAX_ZOOM = 22
# Below this zoom a tile is empty: a whole region of towns is not a street map.
MIN_ZOOM = 6


def max_priority(z: int) -> int:
    """Zoomed out, only the main routes, so a city of 100,000 blocks stays light."""
    if z < 10:
        return 1
    if z < 12:
        return 2
    if z < 13:
        return 3
    return 9


_TILE = """
WITH q AS (
    SELECT s.id, s.name, s.priority, coalesce(st.passes, 0) AS passes,
           floor(extract(epoch FROM st.last_service))::bigint AS last,
           floor(extract(epoch FROM st.last_plowed))::bigint AS plowed,
           floor(extract(epoch FROM st.last_salted))::bigint AS salted,
           ST_AsMVTGeom(ST_Transform(s.geom, 3857), ST_TileEnvelope($4, $5, $6),
                        {extent}, {buffer}, true) AS geom
      FROM street_segments s
      {status}
     WHERE s.town_id = $1 AND s.valid_to IS NULL AND s.priority <= $7
       AND s.geom && ST_Transform(ST_TileEnvelope($4, $5, $6, margin => {margin}), 4326)
)
SELECT ST_AsMVT(q, '{layer}', {extent}, 'geom', 'id') FROM q WHERE geom IS NOT NULL
"""


def _sql(status: str) -> str:
    # Only constants are formatted in; every value is a $n parameter.
    return _TILE.format(extent=EXTENT, buffer=BUFFER, margin=BUFFER / EXTENT, layer=LAYER,
                        status=status)


def valid_tile(z: int, x: int, y: int) -> bool:
    return 0 <= z <= MAX_ZOOM and 0 <= x < 2**z and 0 <= y < 2**z


async def street_tile(
    conn: asyncpg.Connection, rules: TownRules, storm_key: int, z: int, x: int, y: int
) -> bytes:
    if z < MIN_ZOOM:
        return b""
    body: bytes | None = await conn.fetchval(
        _sql(status_join(rules)), rules.town_id, storm_key, cutoff(rules), z, x, y,
        max_priority(z))
    return body or b""
