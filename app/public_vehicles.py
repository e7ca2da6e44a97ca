"""Vehicle positions as the public may see them: delayed, pseudonymous, and without idle
vehicles or vehicles at a depot. The rules themselves are in app/town_rules.py; this
module is the database side (snapshots, catch-up after a start, depot tests)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from app import live
from app.public_status import SERVICES_STATUS
from app.town_rules import TownRules, is_idle

_COLUMNS = """v.ident, v.label, p.fix_time, ST_Y(p.geom) AS lat, ST_X(p.geom) AS lon,
              p.speed_mps, p.heading_deg, p.plow_down, p.spreader_on,
              plowshare_at_depot(v.town_id, p.geom) AS at_depot"""

# Undelayed: the newest fix of each vehicle.
_NOW = f"""
SELECT {_COLUMNS}
  FROM vehicles v JOIN vehicle_positions p ON p.vehicle_id = v.id
 WHERE v.town_id = $1"""

# Delayed: each vehicle's newest fix at or before the cutoff (pings primary key order).
# A vehicle silent for longer than a day before the cutoff is idle however the town
# sets it, so the search stops there.
_AS_OF = f"""
SELECT {_COLUMNS}
  FROM vehicles v
 CROSS JOIN LATERAL (
        SELECT * FROM pings q
         WHERE q.vehicle_id = v.id AND q.fix_time <= $2
           AND q.fix_time > $2 - interval '1 day'
         ORDER BY q.fix_time DESC LIMIT 1) p
 WHERE v.town_id = $1"""

# Fixes the public will see in the next `delay` seconds; a feed that starts (or restarts)
# queues them, or a plow would stand still on the map until its new fixes come due.
_UPCOMING = f"""
SELECT {_COLUMNS}
  FROM pings p JOIN vehicles v ON v.id = p.vehicle_id
 WHERE p.town_id = $1 AND p.fix_time > $2
 ORDER BY p.fix_time"""

_AT_DEPOT = """
SELECT plowshare_at_depot($1, ST_SetSRID(ST_MakePoint(t.lon, t.lat), 4326)) AS at_depot
  FROM unnest($2::float8[], $3::float8[]) WITH ORDINALITY AS t(lon, lat, n)
 ORDER BY t.n"""


def _item(r: asyncpg.Record) -> dict[str, Any]:
    return live.vehicle_item(
        ident=r["ident"], label=r["label"], fix_time=r["fix_time"], lat=r["lat"],
        lon=r["lon"], speed=r["speed_mps"], heading=r["heading_deg"], plow=r["plow_down"],
        spreader=r["spreader_on"])


def public_vehicle(rules: TownRules, item: dict[str, Any], at_depot: bool,
                   public_now: datetime) -> dict[str, Any] | None:
    """The item as the public sees it, or None when it is to be hidden. ``item`` is a
    live vehicle item (app.live.vehicle_item)."""
    if at_depot:
        return None
    if is_idle(rules, datetime.fromisoformat(item["time"]), item["speed"], item["plow"],
               item["spreader"], public_now):
        return None
    return {**item, "id": rules.public_id(item["id"]),
            "label": rules.public_label(item["id"], item.get("label"))}


async def public_snapshot(conn: asyncpg.Connection, rules: TownRules,
                          now: datetime | None = None) -> list[dict[str, Any]]:
    now = now or datetime.now(UTC)
    public_now = now - timedelta(seconds=rules.delay)
    if rules.delay:
        rows = await conn.fetch(_AS_OF, rules.town_id, public_now)
    else:
        rows = await conn.fetch(_NOW, rules.town_id)
    shown = (public_vehicle(rules, _item(r), r["at_depot"], public_now) for r in rows)
    return sorted((v for v in shown if v is not None), key=lambda v: str(v["id"]))


async def upcoming(conn: asyncpg.Connection, rules: TownRules,
                   now: datetime) -> list[tuple[dict[str, Any], bool]]:
    """(item, at_depot) for fixes newer than the public's now, oldest first."""
    rows = await conn.fetch(_UPCOMING, rules.town_id,
                            now - timedelta(seconds=rules.delay))
    return [(_item(r), r["at_depot"]) for r in rows]


async def at_depot(conn: asyncpg.Connection, rules: TownRules,
                   items: Sequence[dict[str, Any]]) -> list[bool]:
    if not rules.has_depots or not items:
        return [False] * len(items)
    rows = await conn.fetch(_AT_DEPOT, rules.town_id, [i["lon"] for i in items],
                            [i["lat"] for i in items])
    return [bool(r["at_depot"]) for r in rows]


_UPCOMING_STATUS = f"""
SELECT x.segment_id, x.ended_at, st.first_service, st.last_service, st.passes,
       st.last_plowed, st.last_salted
  FROM (SELECT DISTINCT segment_id, ended_at FROM segment_services
         WHERE town_id = $1 AND coalesce(storm_id, 0) = $2 AND ended_at > $3) x
 CROSS JOIN LATERAL (
        SELECT {SERVICES_STATUS}
          FROM segment_services ss
         WHERE ss.segment_id = x.segment_id AND coalesce(ss.storm_id, 0) = $2
           AND ss.ended_at <= x.ended_at) st
 ORDER BY x.ended_at"""


async def upcoming_status(conn: asyncpg.Connection, rules: TownRules,
                          now: datetime) -> list[dict[str, Any]]:
    """Status changes the public will see in the next ``delay`` seconds, each as the
    segment stood right after that pass, as live ``segments`` items."""
    rows = await conn.fetch(_UPCOMING_STATUS, rules.town_id, rules.storm_key,
                            now - timedelta(seconds=rules.delay))

    def iso(t: datetime | None) -> str | None:
        return t.isoformat() if t else None

    return [
        {"id": r["segment_id"], "storm": rules.storm_key or None,
         "first_service": iso(r["first_service"]), "last_service": iso(r["last_service"]),
         "passes": r["passes"], "last_plowed": iso(r["last_plowed"]),
         "last_salted": iso(r["last_salted"])}
        for r in rows
    ]
