"""Read queries of the API. Values only ever travel as $n parameters."""

from __future__ import annotations

from typing import Any

import asyncpg

from app import live
from app.errors import NotFound
from app.storms import current_or_last

_TOWN = """
SELECT t.slug, t.name, t.timezone,
       (SELECT ARRAY[ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e)]
          FROM (SELECT ST_Extent(s.geom) AS e FROM street_segments s
                 WHERE s.town_id = t.id AND s.valid_to IS NULL) x
         WHERE e IS NOT NULL) AS bbox,
       (SELECT count(*) FROM street_segments s
         WHERE s.town_id = t.id AND s.valid_to IS NULL) AS segments,
       (SELECT count(*) FROM vehicles v WHERE v.town_id = t.id) AS vehicles
  FROM towns t
"""


def _town(row: asyncpg.Record) -> dict[str, Any]:
    bbox = row["bbox"]
    return {
        "slug": row["slug"],
        "name": row["name"],
        "timezone": row["timezone"],
        "bbox": [round(v, 7) for v in bbox] if bbox else None,
        "segments": row["segments"],
        "vehicles": row["vehicles"],
    }


async def list_towns(conn: asyncpg.Connection) -> list[dict[str, Any]]:
    return [_town(r) for r in await conn.fetch(_TOWN + " ORDER BY t.name")]


async def get_town(conn: asyncpg.Connection, slug: str) -> dict[str, Any]:
    row = await conn.fetchrow(_TOWN + " WHERE t.slug = $1", slug)
    if row is None:
        raise NotFound(f"no town '{slug}'")
    return _town(row)


async def town_id(conn: asyncpg.Connection, slug: str) -> int:
    found: int | None = await conn.fetchval("SELECT id FROM towns WHERE slug = $1", slug)
    if found is None:
        raise NotFound(f"no town '{slug}'")
    return found


async def town_match_config(conn: asyncpg.Connection, town: int, *, lock: bool = False
                            ) -> dict[str, Any]:
    """The town's own matcher settings (``town_settings.match_config``), {} if none;
    ``lock``: FOR UPDATE, to change them in this transaction."""
    doc = await conn.fetchval(
        "SELECT match_config FROM town_settings WHERE town_id = $1"
        + (" FOR UPDATE" if lock else ""), town)
    return dict(doc) if isinstance(doc, dict) else {}


async def vehicles(conn: asyncpg.Connection, town: int) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        """SELECT v.ident, v.label, p.fix_time, ST_Y(p.geom) AS lat, ST_X(p.geom) AS lon,
                  p.speed_mps, p.heading_deg, p.plow_down, p.spreader_on
             FROM vehicles v JOIN vehicle_positions p ON p.vehicle_id = v.id
            WHERE v.town_id = $1
            ORDER BY v.ident""",
        town,
    )
    return [
        live.vehicle_item(
            ident=r["ident"], label=r["label"], fix_time=r["fix_time"], lat=r["lat"],
            lon=r["lon"], speed=r["speed_mps"], heading=r["heading_deg"],
            plow=r["plow_down"], spreader=r["spreader_on"],
        )
        for r in rows
    ]


async def storm_shown(conn: asyncpg.Connection, town: int) -> dict[str, Any] | None:
    """The storm whose status the public map shows: the running one, else the last."""
    row = await current_or_last(conn, town)
    if row is None:
        return None
    return {
        "id": row["id"],
        "name": row["name"],
        "started_at": row["started_at"].isoformat(),
        "ended_at": row["ended_at"].isoformat() if row["ended_at"] else None,
        "running": row["ended_at"] is None,
    }


async def streets_geojson(conn: asyncpg.Connection, town: int) -> bytes:
    """The town's current segments as a GeoJSON FeatureCollection, built in PostGIS.
    Geometry and attributes only: service status goes to residents through the tiles
    and open data, where the town's public delay applies."""
    body: str = await conn.fetchval(
        """SELECT json_build_object(
                    'type', 'FeatureCollection',
                    'features', coalesce(json_agg(json_build_object(
                        'type', 'Feature',
                        'id', s.id,
                        'geometry', ST_AsGeoJSON(s.geom, 6)::json,
                        'properties', json_build_object(
                            'id', s.id, 'source_id', s.source_id, 'name', s.name,
                            'road_class', s.road_class, 'oneway', s.oneway,
                            'priority', s.priority, 'length_m', round(s.length_m::numeric, 1))
                    ) ORDER BY s.id), '[]'::json))::text
             FROM street_segments s
            WHERE s.town_id = $1 AND s.valid_to IS NULL""",
        town,
    )
    return body.encode()
