"""Named position filters (after Traccar's `filter.*`), applied after decoding.

Each filter returns a reason and a detail when it fires, or None. They are pure: the
current time is passed in, so tests can pin it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from ingest.model import Position


@dataclass(frozen=True)
class FilterConfig:
    max_future: timedelta = timedelta(minutes=2)
    max_age: timedelta = timedelta(days=14)


Filter = Callable[[Position, FilterConfig, datetime], tuple[str, str] | None]


def future_time(p: Position, cfg: FilterConfig, now: datetime) -> tuple[str, str] | None:
    if p.fix_time > now + cfg.max_future:
        ahead = (p.fix_time - now).total_seconds()
        return "future_time", f"fix time {ahead:.0f}s ahead of server time"
    return None


def too_old(p: Position, cfg: FilterConfig, now: datetime) -> tuple[str, str] | None:
    if p.fix_time < now - cfg.max_age:
        return "too_old", f"fix time older than {cfg.max_age.total_seconds():.0f}s"
    return None


FILTERS: tuple[Filter, ...] = (future_time, too_old)


def first_failure(
    p: Position, cfg: FilterConfig, now: datetime, filters: tuple[Filter, ...] = FILTERS
) -> tuple[str, str] | None:
    for f in filters:
        result = f(p, cfg, now)
        if result is not None:
            return result
    return None
