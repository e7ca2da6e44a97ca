"""Service status as the public may see it, shared by tiles, cards, search and open data.

Every query here takes ``$1`` town id, ``$2`` storm key (storm id, or 0 for service outside
storms) and ``$3`` cutoff time, and joins ``st`` (first_service, last_service, passes,
last_plowed, last_salted) to segments ``s``. With no public delay the status table answers
(cutoff 'infinity'). With a delay, status is recomputed from the evidence up to the cutoff:
the newest row of segment_status would reveal where a plow was a minute ago, which is
exactly what the town chose to delay.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import asyncpg

from app.errors import NotFound
from app.town_rules import TownRules, load_rules

LIVE_STATUS = """
LEFT JOIN segment_status st
       ON st.segment_id = s.id AND st.storm_key = $2 AND st.last_service <= $3"""

# A block's status as of some moment, from its services (alias ss) up to then: what
# segment_status holds live, for pages that must show the past (a delayed town).
SERVICES_STATUS = """min(ss.started_at) AS first_service, max(ss.ended_at) AS last_service,
       count(*)::int AS passes,
       max(ss.ended_at) FILTER (WHERE ss.plowed) AS last_plowed,
       max(ss.ended_at) FILTER (WHERE ss.salted) AS last_salted"""

DELAYED_STATUS = f"""
LEFT JOIN LATERAL (
    SELECT {SERVICES_STATUS}
      FROM segment_services ss
     WHERE ss.segment_id = s.id AND coalesce(ss.storm_id, 0) = $2 AND ss.ended_at <= $3
    HAVING count(*) > 0) st ON true"""

FOREVER = datetime.max.replace(tzinfo=UTC)


def status_join(rules: TownRules) -> str:
    return DELAYED_STATUS if rules.delay else LIVE_STATUS


def cutoff(rules: TownRules, now: datetime | None = None) -> datetime:
    """The public's "now" for status: now less the delay; a completed storm is complete.
    asyncpg sends datetime.max as 'infinity'."""
    if not rules.delay:
        return FOREVER
    return (now or datetime.now(UTC)) - timedelta(seconds=rules.delay)


_SIGNATURE = """
SELECT count(*) FILTER (WHERE valid_to IS NULL) AS n, coalesce(max(id), 0) AS top
  FROM street_segments WHERE town_id = $1"""
_LIVE_COUNT = """
SELECT coalesce(sum(passes), 0) FROM segment_status
 WHERE town_id = $1 AND storm_key = $2 AND last_service <= $3"""
_DELAYED_COUNT = """
SELECT count(*) FROM segment_services
 WHERE town_id = $1 AND coalesce(storm_id, 0) = $2 AND ended_at <= $3"""


async def status_version(conn: asyncpg.Connection, rules: TownRules) -> str:
    """A token that only grows with what the public status shows. A tile fetched with it
    in the URL can be cached as long as one likes: whatever copy a browser holds was made
    after the token was read, so it is at least that new, and live deltas cover the rest."""
    sig = await conn.fetchrow(_SIGNATURE, rules.town_id)
    count_sql = _DELAYED_COUNT if rules.delay else _LIVE_COUNT
    passes = await conn.fetchval(count_sql, rules.town_id, rules.storm_key, cutoff(rules))
    return f"{rules.storm_key}.{rules.delay}.{sig['n']}.{sig['top']}.{passes}"


class RulesCache:
    """Town rules for a few seconds per process: every tile would otherwise re-read them.
    The dispatch API drops a town's entry when it changes its rules or storm."""

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._entries: dict[str, tuple[float, TownRules]] = {}

    async def get(self, conn: asyncpg.Connection, slug: str) -> TownRules:
        hit = self._entries.get(slug)
        now = time.monotonic()
        if hit is not None and now - hit[0] < self.ttl_s:
            return hit[1]
        rules = await load_rules(conn, slug)
        self._entries[slug] = (now, rules)
        return rules

    def forget(self, slug: str) -> None:
        self._entries.pop(slug, None)


async def check_storm(conn: asyncpg.Connection, rules: TownRules, storm: int | None) -> int:
    """The storm key asked for (default: the storm shown); 404 unless it is the town's."""
    key = rules.storm_key if storm is None else storm
    if key and not await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM storms WHERE id = $1 AND town_id = $2)",
            key, rules.town_id):
        raise NotFound(f"no storm {key} in '{rules.slug}'")
    return key
