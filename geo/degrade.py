"""Make clean simulated GPS look like what real trackers deliver.

The simulator (``geo.simulate``) emits perfect fixes on a fixed clock; map matching and
coverage have to cope with sparse reporting, lost fixes and wild jumps. These functions
take one vehicle's time-ordered fixes and return a degraded copy, never mutating the
input. All randomness comes from the caller's ``random.Random`` so a seed reproduces a
benchmark exactly. Gaussian jitter lives in ``geo.simulate.add_noise``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Protocol, TypeVar

from pyproj import Geod

from geo.simulate import SimFix

_GEOD = Geod(ellps="WGS84")

# Clock jitter tolerance when checking "every_s has passed": fix times are built by
# multiplying timedeltas, but a caller's own times may carry float rounding.
_TIME_EPS_S = 1e-6


class _Timed(Protocol):
    @property
    def time(self) -> datetime: ...


T = TypeVar("T", bound=_Timed)


def subsample(fixes: Sequence[T], every_s: float) -> list[T]:
    """Keep the first fix, then each first fix at least ``every_s`` after the last kept.

    On the simulator's regular clock this keeps exactly every k-th fix. On real tracks
    with gaps the reporting clock restarts after the gap, as a tracker that lost its
    fix and regained it would.
    """
    if every_s <= 0:
        raise ValueError("every_s must be positive")
    out: list[T] = []
    last: datetime | None = None
    for fix in fixes:
        if last is None or (fix.time - last).total_seconds() >= every_s - _TIME_EPS_S:
            out.append(fix)
            last = fix.time
    return out


def on_schedule(times: Sequence[float], start: float, every_s: float) -> list[int]:
    """Indices of the fixes a tracker on a fixed schedule sends: the first fix of each
    ``every_s``-second slot from ``start`` on (a fix at its time, or the first one after
    it when none was at hand). Unlike ``subsample`` the clock never restarts, so the
    schedules starting 0, 1, ... every_s - 1 s in split the fixes between them.
    ``times`` in seconds, ascending.
    """
    if every_s <= 0:
        raise ValueError("every_s must be positive")
    out: list[int] = []
    last = -1
    for i, t in enumerate(times):
        if t < start - _TIME_EPS_S:
            continue
        slot = math.floor((t - start) / every_s + 1e-9)
        if slot > last:
            out.append(i)
            last = slot
    return out


def drop_out(fixes: Sequence[T], rng: random.Random, p: float, burst: float = 1.0) -> list[T]:
    """Lose about a fraction ``p`` of fixes, in runs of ``burst`` consecutive fixes on average.

    A two-state (Gilbert) loss model: once a dropout starts it continues with
    probability 1 - 1/burst per fix, so run lengths are geometric with mean ``burst``;
    the start probability is chosen so that the long-run loss fraction is ``p``.
    ``burst=1`` gives independent losses; a tunnel or an urban canyon is a burst of
    tens of fixes. Needs p <= burst / (burst + 1), else runs could not be that short.
    """
    if not 0.0 <= p < 1.0:
        raise ValueError("p must be in [0, 1)")
    if burst < 1.0:
        raise ValueError("burst must be >= 1 (mean fixes per dropout)")
    if p == 0.0:
        return list(fixes)
    leave = 1.0 / burst
    enter = p * leave / (1.0 - p)
    if enter > 1.0:
        raise ValueError(f"p={p} too high for mean burst {burst}: at most {burst / (burst + 1)}")
    # Start in the stationary state, so the loss rate does not depend on track length.
    lost = rng.random() < p
    out: list[T] = []
    for fix in fixes:
        if not lost:
            out.append(fix)
        lost = rng.random() >= leave if lost else rng.random() < enter
    return out


def add_outliers(
    fixes: Sequence[SimFix],
    rng: random.Random,
    p: float,
    min_m: float = 100.0,
    max_m: float = 400.0,
) -> list[SimFix]:
    """Copies where each fix, with probability ``p``, jumps ``min_m``..``max_m`` metres.

    Models multipath reflections and cold-start fixes: a single position far off the
    road, in a uniformly random direction, while time and the recorded truth (segment,
    direction, blade) stay those of the real position.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError("p must be in [0, 1]")
    if not 0.0 <= min_m <= max_m:
        raise ValueError("need 0 <= min_m <= max_m")
    out = list(fixes)
    for i, fix in enumerate(out):
        if rng.random() < p:
            azimuth = rng.uniform(-180.0, 180.0)
            dist = rng.uniform(min_m, max_m)
            lon, lat, _ = _GEOD.fwd(fix.lon, fix.lat, azimuth, dist)
            out[i] = replace(fix, lon=float(lon), lat=float(lat))
    return out


def jitter_motion(
    fixes: Sequence[SimFix],
    rng: random.Random,
    speed_sigma_mps: float = 0.5,
    heading_sigma_deg: float = 5.0,
) -> list[SimFix]:
    """Copies with the reported speed and heading jittered like a GNSS receiver's.

    The simulator reports the truck's exact speed and course; real receivers derive
    them from Doppler with errors of a few tenths of a m/s and a few degrees (more at
    crawling speed, where the course is poorly defined). Speeds stay >= 0.
    """
    if speed_sigma_mps < 0 or heading_sigma_deg < 0:
        raise ValueError("sigmas must be >= 0")
    out: list[SimFix] = []
    for fix in fixes:
        speed = max(0.0, fix.speed_mps + rng.gauss(0.0, speed_sigma_mps))
        # Course error grows as speed falls: the same velocity error is a larger angle.
        scale = max(1.0, 5.0 / max(fix.speed_mps, 0.5))
        heading = (fix.heading_deg + rng.gauss(0.0, heading_sigma_deg * scale)) % 360.0
        out.append(replace(fix, speed_mps=speed, heading_deg=heading))
    return out
