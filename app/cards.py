"""The answer to "has my street been plowed?": one block's (or one street's) status in the
storm shown, the evidence behind it, and an honest outlook — how far along the street's
priority class and the classes before it are — instead of an ETA nobody can keep."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import asyncpg

from app.errors import NotFound
from app.public_status import cutoff, status_join
from app.town_rules import TownRules

EVIDENCE_LIMIT = 10
_STATUS_COLUMNS = """st.first_service, st.last_service, coalesce(st.passes, 0) AS passes,
                     st.last_plowed, st.last_salted"""

_SEGMENT = """
SELECT s.id, s.source_id, s.name, s.road_class, s.priority, s.length_m,
       ARRAY[ST_XMin(s.geom), ST_YMin(s.geom), ST_XMax(s.geom), ST_YMax(s.geom)] AS bbox,
       {columns}
  FROM street_segments s
  {status}
 WHERE s.town_id = $1 AND s.id = $4 AND s.valid_to IS NULL
"""

_EVIDENCE = """
SELECT ss.started_at, ss.ended_at, ss.plowed, ss.salted, ss.confidence, ss.fraction,
       ss.forward, v.ident
  FROM segment_services ss JOIN vehicles v ON v.id = ss.vehicle_id
 WHERE ss.town_id = $1 AND coalesce(ss.storm_id, 0) = $2 AND ss.ended_at <= $3
   AND ss.segment_id = $4
 ORDER BY ss.ended_at DESC
 LIMIT {limit}
"""

_STREET = """
SELECT s.id, s.priority, s.length_m, {columns},
       ARRAY[ST_XMin(s.geom), ST_YMin(s.geom), ST_XMax(s.geom), ST_YMax(s.geom)] AS bbox
  FROM street_segments s
  {status}
 WHERE s.town_id = $1 AND s.valid_to IS NULL AND s.name = $4
 ORDER BY s.id
"""

_CLASSES = """
SELECT s.priority, count(*) AS blocks, sum(s.length_m) AS length_m,
       count(st.last_service) AS serviced_blocks,
       coalesce(sum(s.length_m) FILTER (WHERE st.last_service IS NOT NULL), 0)
           AS serviced_m,
       coalesce(sum(s.length_m) FILTER (WHERE st.last_plowed IS NOT NULL), 0) AS plowed_m
  FROM street_segments s
  {status}
 WHERE s.town_id = $1 AND s.valid_to IS NULL
 GROUP BY s.priority ORDER BY s.priority
"""


def _iso(t: datetime | None) -> str | None:
    return t.isoformat() if t else None


def _status(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "state": state_of(row["last_plowed"], row["last_salted"], row["last_service"]),
        "first_service": _iso(row["first_service"]),
        "last_service": _iso(row["last_service"]),
        "last_plowed": _iso(row["last_plowed"]),
        "last_salted": _iso(row["last_salted"]),
        "passes": row["passes"],
    }


def state_of(plowed: datetime | None, salted: datetime | None,
             serviced: datetime | None) -> str:
    """plowed | salted (salted, not yet plowed) | serviced (a pass with neither recorded,
    kept so no evidence is hidden) | none (not yet this storm)."""
    if plowed:
        return "plowed"
    if salted:
        return "salted"
    return "serviced" if serviced else "none"


def _bbox(values: list[float]) -> list[float]:
    return [round(v, 7) for v in values]


async def segment_card(conn: asyncpg.Connection, rules: TownRules, segment: int,
                       outlook: OutlookCache) -> dict[str, Any]:
    args = (rules.town_id, rules.storm_key, cutoff(rules), segment)
    row = await conn.fetchrow(
        _SEGMENT.format(columns=_STATUS_COLUMNS, status=status_join(rules)), *args)
    if row is None:
        raise NotFound(f"no street segment {segment} in '{rules.slug}'")
    evidence = await conn.fetch(_EVIDENCE.format(limit=EVIDENCE_LIMIT), *args)
    return {
        "kind": "segment",
        "segment": {
            "id": row["id"], "source_id": row["source_id"], "name": row["name"],
            "road_class": row["road_class"], "priority": row["priority"],
            "length_m": round(row["length_m"], 1), "bbox": _bbox(row["bbox"]),
        },
        "status": _status(row),
        "evidence": [_evidence(rules, e) for e in evidence],
        "storm": rules.storm,
        "as_of": _iso(None if not rules.delay else cutoff(rules)),
        "outlook": await outlook.get(conn, rules),
    }


def _evidence(rules: TownRules, e: asyncpg.Record) -> dict[str, Any]:
    return {
        "vehicle": rules.public_label(e["ident"], None),
        "started_at": e["started_at"].isoformat(),
        "ended_at": e["ended_at"].isoformat(),
        "plowed": e["plowed"],
        "salted": e["salted"],
        "confidence": round(float(e["confidence"]), 2),
        "fraction": round(float(e["fraction"]), 2),
        "forward": e["forward"],
    }


async def street_card(conn: asyncpg.Connection, rules: TownRules, name: str,
                      outlook: OutlookCache) -> dict[str, Any]:
    """Every current block of the street with this exact name (as search returns it)."""
    rows = await conn.fetch(
        _STREET.format(columns=_STATUS_COLUMNS, status=status_join(rules)),
        rules.town_id, rules.storm_key, cutoff(rules), name)
    if not rows:
        raise NotFound(f"no street '{name}' in '{rules.slug}'")
    boxes = [r["bbox"] for r in rows]
    return {
        "kind": "street",
        "name": name,
        "priority": min(r["priority"] for r in rows),
        "bbox": _bbox([min(b[0] for b in boxes), min(b[1] for b in boxes),
                       max(b[2] for b in boxes), max(b[3] for b in boxes)]),
        "blocks": [{"id": r["id"], "priority": r["priority"], **_status(r)} for r in rows],
        "storm": rules.storm,
        "as_of": _iso(None if not rules.delay else cutoff(rules)),
        "outlook": await outlook.get(conn, rules),
    }


class OutlookCache:
    """Per-class progress for a town, computed over all its blocks: shared by every card
    asked for within a few seconds, since a storm's progress moves slowly."""

    def __init__(self, ttl_s: float = 10.0) -> None:
        self.ttl_s = ttl_s
        self._entries: dict[tuple[int, int, int], tuple[float, list[dict[str, Any]]]] = {}

    async def get(self, conn: asyncpg.Connection, rules: TownRules) -> list[dict[str, Any]]:
        key = (rules.town_id, rules.storm_key, rules.delay)
        hit = self._entries.get(key)
        now = time.monotonic()
        if hit is not None and now - hit[0] < self.ttl_s:
            return hit[1]
        rows = await conn.fetch(_CLASSES.format(status=status_join(rules)),
                                rules.town_id, rules.storm_key, cutoff(rules))
        classes = [
            {
                "priority": r["priority"],
                "blocks": r["blocks"],
                "serviced_blocks": r["serviced_blocks"],
                "length_m": round(r["length_m"], 1),
                "serviced_pct": _pct(r["serviced_m"], r["length_m"]),
                "plowed_pct": _pct(r["plowed_m"], r["length_m"]),
            }
            for r in rows
        ]
        self._entries[key] = (now, classes)
        return classes

    def forget(self) -> None:
        self._entries.clear()


def _pct(part: float, whole: float) -> int:
    # Rounded down, so a class shows 100 % only when it is really all done.
    return int(100 * part / whole) if whole > 0 else 0
