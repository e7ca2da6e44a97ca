"""Segment status as open data, in the field names of docs/open-data-schema.md, so
another town running anything else can publish the same file.

Same public view as the map: the storm shown (or one asked for), the town's delay applied.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Any

import asyncpg
import orjson

from app.cards import state_of
from app.public_status import cutoff, status_join
from app.town_rules import TownRules

FIELDS = ["segment_id", "source_id", "town", "name", "road_class", "priority", "length_m",
          "storm_id", "status", "first_service", "last_service", "last_plowed",
          "last_salted", "passes"]

_ROWS = """
SELECT s.id, s.source_id, s.name, s.road_class, s.priority, s.length_m,
       st.first_service, st.last_service, coalesce(st.passes, 0) AS passes,
       st.last_plowed, st.last_salted, ST_AsGeoJSON(s.geom, 6) AS geojson,
       ST_AsText(s.geom) AS wkt
  FROM street_segments s
  {status}
 WHERE s.town_id = $1 AND s.valid_to IS NULL
   AND ($4::float8[] IS NULL
        OR s.geom && ST_MakeEnvelope($4[1], $4[2], $4[3], $4[4], 4326))
   AND ($5::timestamptz IS NULL OR st.last_service >= $5)
 ORDER BY s.id
"""


async def segment_rows(conn: asyncpg.Connection, rules: TownRules, storm_key: int,
                       bbox: list[float] | None, since: datetime | None
                       ) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        _ROWS.format(status=status_join(rules)), rules.town_id, storm_key, cutoff(rules),
        bbox, since)
    return rows


def _props(rules: TownRules, storm_key: int, r: asyncpg.Record) -> dict[str, Any]:
    def iso(t: datetime | None) -> str | None:
        return t.isoformat() if t else None

    return {
        "segment_id": r["id"], "source_id": r["source_id"], "town": rules.slug,
        "name": r["name"], "road_class": r["road_class"], "priority": r["priority"],
        "length_m": round(r["length_m"], 1), "storm_id": storm_key or None,
        "status": state_of(r["last_plowed"], r["last_salted"], r["last_service"]),
        "first_service": iso(r["first_service"]), "last_service": iso(r["last_service"]),
        "last_plowed": iso(r["last_plowed"]), "last_salted": iso(r["last_salted"]),
        "passes": r["passes"],
    }


def to_geojson(rules: TownRules, storm_key: int, rows: list[asyncpg.Record]) -> bytes:
    features = [
        {"type": "Feature", "id": r["id"],
         "geometry": orjson.Fragment(r["geojson"]),
         "properties": _props(rules, storm_key, r)}
        for r in rows
    ]
    return orjson.dumps({"type": "FeatureCollection", "features": features})


def to_csv(rules: TownRules, storm_key: int, rows: list[asyncpg.Record]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=[*FIELDS, "wkt"], lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({**_props(rules, storm_key, r), "wkt": r["wkt"]})
    return out.getvalue()
