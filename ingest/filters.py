"""Named position filters (after Traccar's ``filter.*``), configurable per town.

Each filter's name is also the rejection reason it records:

- ``invalid_fix`` (on): the device marked the fix invalid (OsmAnd ``valid=false``, a
  mock location).
- ``future_time`` (120 s): fix time more than ``max_future`` ahead of server time.
- ``too_old`` (14 days): fix time more than ``max_age`` before server time.
- ``poor_accuracy`` (off): reported accuracy worse than ``max_accuracy_m``.
- ``impossible_speed`` (off): the straight line from the vehicle's previous fix (by fix
  time; stored, or earlier in the same batch; at most ``speed_window`` before) needs
  more than ``max_speed_mps``, after allowing ``speed_slack_m`` plus both fixes'
  reported accuracy for GPS error.

Thresholds that are off by default are off as Traccar's are: a deployment turns them on
(IngestSettings, once it has ``max_accuracy_m``/``max_speed_mps``) or a town does, in
``town_filter_settings`` (migration 0020): a NULL column there means "the deployment's
default", and ``disabled`` names filters the town switches off. What a value *cannot*
mean — latitude beyond 90°, (0, 0), a negative speed — is refused by the decoders, for
every town.

The speed filter compares with the *previous* fix only, and only within the window: a
bad fix that got stored can then block a vehicle for at most ``speed_window``, never
forever, and a late fix is judged against the fix before it in time, not the newest.

The checks are pure (the current time and the neighbouring fixes are passed in); the two
database reads at the end are each one statement per batch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import asyncpg

from app.settings import IngestSettings
from ingest.model import Position

Failure = tuple[str, str]
NAMES = ("invalid_fix", "future_time", "too_old", "poor_accuracy", "impossible_speed")
_EARTH_RADIUS_M = 6_371_008.8  # mean radius: error < 0.5 %, plenty for a speed bound


@dataclass(frozen=True)
class FilterConfig:
    max_future: timedelta = timedelta(minutes=2)
    max_age: timedelta = timedelta(days=14)
    max_accuracy_m: float | None = None
    max_speed_mps: float | None = None
    speed_window: timedelta = timedelta(minutes=5)
    speed_slack_m: float = 50.0
    disabled: frozenset[str] = frozenset()

    def checks_speed(self) -> bool:
        return self.max_speed_mps is not None and "impossible_speed" not in self.disabled


def defaults(settings: IngestSettings) -> FilterConfig:
    """The deployment's filter settings. ``max_accuracy_m`` and ``max_speed_mps`` are read
    if IngestSettings has them (app/settings.py is owned elsewhere); until then off."""
    return FilterConfig(
        max_future=timedelta(seconds=settings.max_future_s),
        max_age=timedelta(seconds=settings.max_age_s),
        max_accuracy_m=getattr(settings, "max_accuracy_m", None),
        max_speed_mps=getattr(settings, "max_speed_mps", None),
    )


@dataclass(frozen=True)
class TownFilters:
    """One town's row of ``town_filter_settings``: None means "the deployment default"."""

    max_future_s: float | None = None
    max_age_s: float | None = None
    max_accuracy_m: float | None = None
    max_speed_mps: float | None = None
    speed_window_s: float | None = None
    speed_slack_m: float | None = None
    disabled: frozenset[str] = frozenset()

    def over(self, base: FilterConfig) -> FilterConfig:
        cfg = replace(base, disabled=base.disabled | self.disabled)
        if self.max_future_s is not None:
            cfg = replace(cfg, max_future=timedelta(seconds=self.max_future_s))
        if self.max_age_s is not None:
            cfg = replace(cfg, max_age=timedelta(seconds=self.max_age_s))
        if self.max_accuracy_m is not None:
            cfg = replace(cfg, max_accuracy_m=self.max_accuracy_m)
        if self.max_speed_mps is not None:
            cfg = replace(cfg, max_speed_mps=self.max_speed_mps)
        if self.speed_window_s is not None:
            cfg = replace(cfg, speed_window=timedelta(seconds=self.speed_window_s))
        if self.speed_slack_m is not None:
            cfg = replace(cfg, speed_slack_m=self.speed_slack_m)
        return cfg


# -- filters on one fix ---------------------------------------------------------------
Filter = Callable[[Position, FilterConfig, datetime], Failure | None]


def invalid_fix(p: Position, cfg: FilterConfig, now: datetime) -> Failure | None:
    if not p.valid:
        return "invalid_fix", "the device marked this fix invalid"
    return None


def future_time(p: Position, cfg: FilterConfig, now: datetime) -> Failure | None:
    if p.fix_time > now + cfg.max_future:
        ahead = (p.fix_time - now).total_seconds()
        return "future_time", f"fix time {ahead:.0f}s ahead of server time"
    return None


def too_old(p: Position, cfg: FilterConfig, now: datetime) -> Failure | None:
    if p.fix_time < now - cfg.max_age:
        return "too_old", f"fix time older than {cfg.max_age.total_seconds():.0f}s"
    return None


def poor_accuracy(p: Position, cfg: FilterConfig, now: datetime) -> Failure | None:
    limit = cfg.max_accuracy_m
    if limit is not None and p.accuracy_m is not None and p.accuracy_m > limit:
        return "poor_accuracy", f"accuracy {p.accuracy_m:.0f} m worse than {limit:g} m"
    return None


FILTERS: tuple[Filter, ...] = (invalid_fix, future_time, too_old, poor_accuracy)


def first_failure(
    p: Position, cfg: FilterConfig, now: datetime, filters: tuple[Filter, ...] = FILTERS
) -> Failure | None:
    for f in filters:
        if f.__name__ in cfg.disabled:
            continue
        result = f(p, cfg, now)
        if result is not None:
            return result
    return None


# -- the speed filter, against neighbouring fixes -------------------------------------
@dataclass(frozen=True, slots=True)
class Fix:
    time: datetime
    lat: float
    lon: float
    accuracy_m: float | None


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * _EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def impossible_speed(p: Position, prev: Fix | None, cfg: FilterConfig) -> Failure | None:
    if prev is None or not cfg.checks_speed():
        return None
    assert cfg.max_speed_mps is not None
    dt = (p.fix_time - prev.time).total_seconds()
    if dt <= 0 or dt > cfg.speed_window.total_seconds():
        return None
    dist = distance_m(prev.lat, prev.lon, p.lat, p.lon)
    slack = cfg.speed_slack_m + (p.accuracy_m or 0.0) + (prev.accuracy_m or 0.0)
    if dist - slack > cfg.max_speed_mps * dt:
        return "impossible_speed", (
            f"{dist:.0f} m in {dt:.1f} s after the fix at {prev.time.isoformat()} "
            f"({dist / dt:.0f} m/s > {cfg.max_speed_mps:g} m/s, {slack:.0f} m allowed "
            "for GPS error)")
    return None


def speed_failures(
    positions: Sequence[Position],
    stored_before: Sequence[Fix | None],
    config: Callable[[Position], FilterConfig],
) -> dict[int, Failure]:
    """Which of ``positions`` (resolved, so with vehicle ids) fail the speed filter.
    ``stored_before[i]`` is the stored fix of the same vehicle just before
    ``positions[i]``. A fix earlier in the batch that passed is a neighbour too: a
    buffered array is checked fix by fix, in fix-time order."""
    failures: dict[int, Failure] = {}
    passed: dict[int | None, Fix] = {}
    order = sorted(range(len(positions)),
                   key=lambda i: (positions[i].vehicle_id or 0, positions[i].fix_time))
    for i in order:
        p = positions[i]
        prev = stored_before[i]
        mine = passed.get(p.vehicle_id)
        if mine is not None and mine.time < p.fix_time and (prev is None
                                                            or mine.time > prev.time):
            prev = mine
        failure = impossible_speed(p, prev, config(p))
        if failure is not None:
            failures[i] = failure
        else:
            passed[p.vehicle_id] = Fix(p.fix_time, p.lat, p.lon, p.accuracy_m)
    return failures


# -- database side --------------------------------------------------------------------
_TOWN_FILTERS = """
SELECT t.slug, s.max_future_s, s.max_age_s, s.max_accuracy_m, s.max_speed_mps,
       s.speed_window_s, s.speed_slack_m, s.disabled
  FROM town_filter_settings s JOIN towns t ON t.id = s.town_id
 WHERE t.slug = ANY($1::text[])
"""

# One index probe per fix on the pings primary key (vehicle_id, fix_time); the lower
# bound keeps each probe to the one or two daily partitions the window touches.
_PREVIOUS_FIXES = """
SELECT q.i, p.fix_time, ST_Y(p.geom) AS lat, ST_X(p.geom) AS lon, p.accuracy_m
  FROM unnest($1::bigint[], $2::timestamptz[], $3::timestamptz[])
       WITH ORDINALITY AS q(vehicle_id, fix_time, since, i)
 CROSS JOIN LATERAL (
       SELECT s.fix_time, s.geom, s.accuracy_m FROM pings s
        WHERE s.vehicle_id = q.vehicle_id AND s.fix_time < q.fix_time
          AND s.fix_time >= q.since
        ORDER BY s.fix_time DESC LIMIT 1) p
"""

_SAVE_TOWN_FILTERS = """
INSERT INTO town_filter_settings AS f (town_id, max_future_s, max_age_s, max_accuracy_m,
                                       max_speed_mps, speed_window_s, speed_slack_m,
                                       disabled)
SELECT t.id, $2, $3, $4, $5, $6, $7, $8::text[] FROM towns t WHERE t.slug = $1
ON CONFLICT (town_id) DO UPDATE
   SET max_future_s = EXCLUDED.max_future_s, max_age_s = EXCLUDED.max_age_s,
       max_accuracy_m = EXCLUDED.max_accuracy_m, max_speed_mps = EXCLUDED.max_speed_mps,
       speed_window_s = EXCLUDED.speed_window_s, speed_slack_m = EXCLUDED.speed_slack_m,
       disabled = EXCLUDED.disabled, updated_at = now()
RETURNING town_id
"""


async def town_filters(conn: asyncpg.Connection, slugs: Iterable[str]) -> dict[str, TownFilters]:
    rows = await conn.fetch(_TOWN_FILTERS, sorted(set(slugs)))
    return {
        r["slug"]: TownFilters(r["max_future_s"], r["max_age_s"], r["max_accuracy_m"],
                               r["max_speed_mps"], r["speed_window_s"], r["speed_slack_m"],
                               frozenset(r["disabled"]))
        for r in rows
    }


async def save_town_filters(conn: asyncpg.Connection, slug: str, f: TownFilters) -> bool:
    """Replace a town's filter settings; False when there is no such town."""
    town_id = await conn.fetchval(
        _SAVE_TOWN_FILTERS, slug, f.max_future_s, f.max_age_s, f.max_accuracy_m,
        f.max_speed_mps, f.speed_window_s, f.speed_slack_m, sorted(f.disabled))
    return town_id is not None


def _minus(t: datetime, span: timedelta) -> datetime:
    try:
        return t - span
    except OverflowError:  # a fix near year 1 (a town may switch too_old off)
        return datetime.min.replace(tzinfo=t.tzinfo)


async def stored_before(
    conn: asyncpg.Connection, positions: Sequence[Position],
    config: Callable[[Position], FilterConfig],
) -> list[Fix | None]:
    """For each position, the vehicle's stored fix just before it within its town's
    speed window, or None."""
    if not positions:
        return []
    rows = await conn.fetch(
        _PREVIOUS_FIXES,
        [p.vehicle_id for p in positions],
        [p.fix_time for p in positions],
        [_minus(p.fix_time, config(p).speed_window) for p in positions],
    )
    found: list[Fix | None] = [None] * len(positions)
    for r in rows:
        found[r["i"] - 1] = Fix(r["fix_time"], r["lat"], r["lon"], r["accuracy_m"])
    return found
