"""Public value types of map matching: fixes in, traversals out, tuning knobs."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any


@dataclass(frozen=True, slots=True)
class Ping:
    """One GPS fix of one vehicle; optional fields are whatever the device reports."""

    vehicle: str
    t: float  # epoch seconds
    lon: float
    lat: float
    speed_mps: float | None = None
    heading_deg: float | None = None  # 0 = north, clockwise
    accuracy_m: float | None = None
    plow: bool | None = None  # blade down; None = no sensor
    spreader: bool | None = None


@dataclass(frozen=True, slots=True)
class Traversal:
    """A stretch of one block driven once, in one direction, at known times.

    ``start_m < end_m`` are measured from the segment's first coordinate whichever
    way it was driven; ``forward`` says the direction.
    """

    vehicle: str
    source_id: str
    forward: bool
    start_m: float
    end_m: float
    t_start: float
    t_end: float
    plow: bool | None
    spreader: bool | None
    confidence: float


@dataclass(frozen=True, slots=True)
class MatchConfig:
    """Tuning of the matcher. Distances in metres, times in seconds, scores in log units.

    The defaults were chosen by measuring precision/recall on simulated plows on real
    OSM networks and on real GPS tracks (``bench/match_quick.py``, ``bench/coverage.py``).
    """

    sigma_m: float = 10.0  # GPS error when a fix reports no accuracy
    sigma_floor_m: float = 4.0  # reported accuracies below this are optimistic
    search_radius_m: float = 50.0  # at least; widened to 4 sigma for poor fixes
    max_search_radius_m: float = 150.0
    max_candidates: int = 12  # directed edges per fix (a crossing of 6 two-way blocks)
    max_candidates_no_heading: int = 20  # ... when no heading rules out one direction
    emission_margin: float = 8.0  # drop blocks this much (log) less likely than the nearest
    beta_m: float = 8.0  # scale of |route - straight line| in the transition
    beta_per_s: float = 0.25  # longer intervals have legitimately longer detours
    max_speed_mps: float = 40.0  # faster implied routes are impossible
    max_detour_m: float = 400.0  # route may exceed 2x the straight line by this much
    implausible_betas: float = 12.0  # routes off both length cues by more are impossible
    max_gap_s: float = 120.0  # a longer silence splits the track: no credit across
    lag: int = 8  # steps after which a step is final even if still ambiguous
    heading_weight: float = 2.5  # log-penalty for driving opposite to the heading is 2x
    heading_min_speed_mps: float = 2.0  # a standing vehicle's heading is noise
    stationary_speed_mps: float = 1.0  # slower reported speed: standing still
    min_move_sigmas: float = 2.5  # a cluster of fixes ends once the vehicle moved this far
    max_skip_s: float = 10.0  # ... or this long has passed
    wrong_way_penalty_m: float = 60.0  # route cost of entering a one-way backwards
    # ... where no fix is on it, only passed through between two: the fixes say nothing
    # of the wrong way there, and a legal way round is the likelier (a shortcut against
    # a one-way is taken only when the way round is this much longer).
    hidden_wrong_way_m: float = 150.0
    u_turn_penalty_m: float = 80.0  # mid-block, or at a node that is not a dead end
    # A longer route that turns back at a crossing, at its first or last block (on to
    # the crossing and back, into a side street and out): a tie-breaker between routes
    # of about the same length, as vehicles seldom turn round at a crossing. Not the
    # full U-turn penalty: with that, real turnarounds are read as detours.
    turn_back_penalty_m: float = 20.0
    reverse_tolerance_sigmas: float = 3.0  # backward slip on one edge read as noise
    speed_weight: float = 0.7  # mixture weight of the speed x time cue; 0 ignores speeds
    ratio_weight: float = 3.0  # no speeds: log-penalty per e-fold of route / line; 0 = off
    plausible_ratio: float = 2.0  # ... a route up to this x the line is never too long; 0 = off
    # No speeds: the vehicle's recent pace (matched metres / seconds, geo.track) stands
    # in for them on sparse fixes that came back near the last one (loops round a
    # block, dead ends), as the second half of a mixture with the straight line.
    pace_weight: float = 0.4  # mixture weight of pace x time; 0 = off
    pace_tolerance: float = 0.1  # its beta grows by this share of the expected metres
    pace_window_s: float = 60.0  # pace over about this much recent driving
    pace_min_gap_s: float = 10.0  # only fixes (and moves) more than this far apart
    pace_gate: float = 0.5  # ... and only when the fixes are less than this x pace apart
    outlier_tolerance: int = 2  # consecutive unconnectable fixes before a split
    # Two dead ends this close are taken to be joined by a road the map lacks (a gap
    # in the data, a yard, a few metres of driveway): a route may pass between them,
    # at this cost beyond the gap's length (as much as a U-turn mid-block), and no
    # street is credited for it. 0 = off.
    map_gap_m: float = 15.0
    map_gap_penalty_m: float = 80.0
    # Fixes far apart often leave two ways between them of about the same length (round
    # either side of a block in a grid): the shortest is taken, but which one the
    # vehicle drove, the fixes cannot say. Above 0, a block between two fixes that a
    # route at most this share (+ 5 m) longer avoids is not credited: fewer streets
    # marked plowed that were not, and fewer that were. 0 = off: credit the shortest.
    ambiguity_share: float = 0.0

    def changed(self, changes: Mapping[str, object]) -> MatchConfig:
        """This config with some ``SETTABLE`` knobs changed (a deployment's, a town's).

        Raises ValueError naming the knob for an unknown name or a value out of range.
        """
        out: dict[str, Any] = {}
        for name, value in changes.items():
            if name not in SETTABLE:
                raise ValueError(f"{name!r} is not a matcher setting one may change "
                                 f"(settable: {', '.join(sorted(SETTABLE))})")
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{name} must be a number, not {value!r}")
            lo, hi = SETTABLE[name]
            if not (math.isfinite(value) and lo <= value <= hi):
                raise ValueError(f"{name} must be between {lo:g} and {hi:g}, not {value!r}")
            if isinstance(getattr(_DEFAULTS, name), int):  # by the field, not the value now
                if value != int(value):
                    raise ValueError(f"{name} must be a whole number, not {value!r}")
                value = int(value)
            out[name] = value
        return replace(self, **out)


# The knobs a deployment or a town may change (``MatchConfig.changed``), with the range
# each takes. The rest are tuning measured by the benchmarks, not local policy.
SETTABLE: dict[str, tuple[float, float]] = {
    "sigma_m": (1.0, 100.0),  # fixes that report no accuracy: a town's devices
    "max_gap_s": (10.0, 3600.0),  # silences a track is split at
    "max_speed_mps": (5.0, 80.0),
    "wrong_way_penalty_m": (0.0, 1000.0),  # 1000: one-ways are (almost) never driven back
    "hidden_wrong_way_m": (0.0, 10_000.0),
    "u_turn_penalty_m": (0.0, 1000.0),
    "map_gap_m": (0.0, 50.0),  # 0: dead ends close together are never joined
    "map_gap_penalty_m": (0.0, 1000.0),
    "lag": (1, 50),  # steps before a match is final (a longer lag: later, steadier)
    "ambiguity_share": (0.0, 0.2),  # > 0: blocks another way about as short avoids are
    # not credited (a town that would rather miss a plowed street than claim one)
}


_DEFAULTS = MatchConfig()
