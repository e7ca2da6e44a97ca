"""Straight runs of dense position-only fixes: where a vehicle turned round, or drove on.

Without reported speeds, ``geo.cluster`` joins fixes until the vehicle is clearly
elsewhere (2.5 sigma: 25 m for fixes that report no accuracy). Whatever a vehicle does
within that reach happens inside one cluster and would vanish into its mean: a poke
into a short dead end and out (real track 00000075's 24 m one at 1 s), or the last
metres before its fixes stop. A vehicle driving shows itself by a *straight run*:
fixes seconds apart, each further from where the run began than the one before and
each step on the same way as the last, along a path hardly longer than the ground it
covered. Jitter round a standing vehicle wanders, and does that for a few fixes at
most.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from geo.matchtypes import Ping

_DENSE_S = 5.0  # fixes further apart in time break a run
_GAIN_M = 1.0  # each fix of a run at least this much further from its start
_SAME_WAY_COS = 0.5  # ... by a step within 60 degrees of the one before
_STRAIGHT = 1.25  # a run's path at most this x the distance it covered
_STEP = 0.5  # ... in steps of at most this x the move threshold
_TURN_RUN = 5  # fixes in a run before it can end in a turn back
_TURN_REACH = 0.5  # ... reaching this x the move threshold from its start
_TURN_BACK_M = 3.0  # ... and a later fix this much nearer its start again
_ASIDE = 0.25  # ... no further from the run's line than this x the run's reach
_TURN_WITHIN = 4  # ... at most this many fixes after the run's last
_END_RUN = 3  # fixes in a run that ends with the last fix: driving on
_END_REACH = 0.5  # ... reaching this x the move threshold from its start

Fix = tuple[Ping, float, float]


@dataclass(slots=True)
class Run:
    """Consecutive fixes receding the same way from ``start`` (x, y)."""

    start: tuple[float, float]
    last: Fix  # its newest (and so farthest) fix
    fixes: int = 1
    path: float = 0.0
    longest: float = 0.0  # its longest step

    @property
    def reach(self) -> float:
        _, x, y = self.last
        return math.hypot(x - self.start[0], y - self.start[1])

    def steady(self, move: float, fixes: int, reach: float) -> bool:
        """At least ``fixes`` long, ``reach`` x move out, and straight."""
        return (self.fixes >= fixes and self.reach >= reach * move
                and self.path <= _STRAIGHT * self.reach)


class Recession:
    """Fix by fix, one vehicle's straight runs (position-only fixes only)."""

    __slots__ = ("_after", "_prev", "_step", "done", "run")

    def __init__(self) -> None:
        self._prev: Fix | None = None
        self._step = (0.0, 0.0)
        self.run: Run | None = None  # the run the newest fix belongs to
        self.done: Run | None = None  # the run before, while a turn back may follow
        self._after = 0  # fixes since ``done`` ended

    def add(self, p: Ping, x: float, y: float) -> None:
        prev, self._prev = self._prev, (p, x, y)
        if prev is None or p.t - prev[0].t >= _DENSE_S:
            self.run = self.done = None
            self._step = (0.0, 0.0)
            return
        if self.done is not None:
            self._after += 1
            if self._after > _TURN_WITHIN:
                self.done = None
        q, px, py = prev
        dx, dy = x - px, y - py
        step = math.hypot(dx, dy)
        sx, sy = self._step
        self._step = (dx, dy)
        run = self.run
        if run is not None and run.last[0] is q and (
                dx * sx + dy * sy >= _SAME_WAY_COS * step * math.hypot(sx, sy)
                and math.hypot(x - run.start[0], y - run.start[1]) >= run.reach + _GAIN_M):
            run.last, run.fixes, run.path = (p, x, y), run.fixes + 1, run.path + step
            run.longest = max(run.longest, step)
            return
        if run is not None and run.fixes >= _TURN_RUN:
            self.done, self._after = run, 1
        # Any step can begin a run, from the fix before it.
        self.run = Run((px, py), (p, x, y), 1, step, step) if step >= _GAIN_M else None

    def turned_back(self, move: float) -> Fix | None:
        """The fix where the vehicle turned round, when the newest fix came back along
        a straight run that drove out far enough."""
        run, now = self.done, self._prev
        if run is None or now is None or not run.steady(move, _TURN_RUN, _TURN_REACH):
            return None
        if run.longest > _STEP * move:
            # Steps that long leave the cluster's reach, where its far fixes see them;
            # and jitter as wide as that makes straight runs by chance.
            return None
        _, x, y = now
        if math.hypot(x - run.start[0], y - run.start[1]) > run.reach - _TURN_BACK_M:
            return None
        # Back the way it came (a dead end, a street too narrow to turn in), not off
        # to one side: the fix lies near the run's line.
        (ax, ay), (_, bx, by) = run.start, run.last
        if abs((bx - ax) * (y - ay) - (by - ay) * (x - ax)) > _ASIDE * run.reach ** 2:
            return None
        self.done = None
        return run.last

    def driving_on(self, move: float) -> Fix | None:
        """The newest fix, if it ends a straight run that drove out far enough."""
        run, now = self.run, self._prev
        if (run is not None and now is not None and run.last[0] is now[0]
                and run.steady(move, _END_RUN, _END_REACH)):
            return now
        return None
