"""Which fixes become HMM steps: consecutive fixes at "the same place" are one step.

A step is the mean of a cluster of consecutive fixes. A vehicle standing still (depot,
traffic light) is one cluster however long it stands, so jitter never turns into
driving; a moving vehicle at 1 Hz makes a cluster every couple of seconds, whose mean
is steadier than any of its fixes (cross-track noise is what tells a street from a
parallel one 15 m away), and sparse fixes are each their own cluster. A cluster ends
when the vehicle has moved on, stops or starts, turns, or changes blade or spreader,
so no step averages across such a change. Dense position-only fixes that drove out in
a straight run and came back end a cluster at the turn, which is a step of its own;
so is the last fix of such a run where the track ends (``geo.recede``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from geo.matchtypes import Ping
from geo.recede import Fix, Recession

if TYPE_CHECKING:
    from geo.match import Matcher
    from geo.track import TrackStats

_TURN_COS = 0.5  # a heading change beyond 60 degrees starts a new cluster
_RECEDING = 4  # fixes in a row moving away from a cluster's start: it is driving
_FAR_CONFIRM_STAYED = 4  # far fixes, near each other, that end a long stay
_LONG_STAY_S = 30.0
_CONFIRM_S = 5.0  # speedless fixes closer in time than this need a second opinion
_TAIL = 8  # joined fixes kept, to take back out of a cluster that turned (_turn_back)


@dataclass(frozen=True, slots=True)
class Seed:
    """A closed cluster: where the vehicle was, from when to when."""

    ping: Ping  # newest fix of the cluster: its sensors stand for the step
    x: float
    y: float
    t: float  # arrived at (x, y)
    t_leave: float  # left it (later than t only for a vehicle that stood still)
    split: bool  # a long silence came before: no route from the previous step
    # Times of the cluster's first and last fix: between two steps the vehicle was
    # unseen only from the one's last fix to the next one's first.
    first_fix: float
    last_fix: float

    @classmethod
    def at(cls, p: Ping, x: float, y: float) -> Seed:
        """One fix alone as a step, at (x, y) in the matcher's plane."""
        return cls(p, x, y, p.t, p.t, False, p.t, p.t)


class Clusterer:
    def __init__(self, matcher: Matcher, stats: TrackStats) -> None:
        self.m = matcher
        self.stats = stats
        self.reset()

    def reset(self) -> None:
        self._n = 0
        self._sx = self._sy = self._st = 0.0
        self._t_first = self._t_last = 0.0
        self._x0 = self._y0 = self._d0 = 0.0  # first fix, last distance from it
        self._rising = 0  # fixes in a row that moved away from the first
        self._last: Ping | None = None
        self._still = False
        self._state: tuple[bool | None, bool | None] = (None, None)
        self._head: tuple[float, float] | None = None
        self._split = False
        self._prev: tuple[float, float, float] | None = None  # last fix seen
        self._far: list[tuple[Ping, float, float]] = []  # far fixes awaiting confirmation
        self._near: tuple[Ping, float, float] | None = None  # sparse, back near: ditto
        self._runs = Recession()  # straight runs of position-only fixes (geo.recede)
        self._tail: list[Fix] = []  # the last few fixes joined, newest last

    def add(self, p: Ping, x: float, y: float, split: bool) -> list[Seed]:
        """Take one fix; returns the cluster it closed, if any."""
        prev, self._prev = self._prev, (x, y, p.t)
        if p.speed_mps is None:
            self._runs.add(p, x, y)
        if self._n == 0:
            self._start(p, x, y, split)
            return []
        cfg = self.m.config
        sp = p.speed_mps
        still = sp is not None and sp < cfg.stationary_speed_mps
        head = _heading(p)
        turned = (head is not None and self._head is not None and not still
                  and head[0] * self._head[0] + head[1] * self._head[1] < _TURN_COS)
        new = still != self._still or (p.plow, p.spreader) != self._state or turned
        if not new and not still:
            move = self._move(p)
            if sp is not None:
                # Moving: how far it went by its own speed, not by two noisy fixes
                # (whose difference is mostly noise at 1 Hz).
                new = sp * (p.t - self._t_first) >= move or p.t - self._t_first >= cfg.max_skip_s
            else:
                return self._speedless(p, x, y, move, prev)
        if new:
            return self._restart(p, x, y)
        self._join(p, x, y)
        if still:
            self.stats.stationary += 1
        else:
            self.stats.decimated += 1
        return []

    def close(self) -> list[Seed]:
        """The open cluster as a step (before a new one, or see ``end``)."""
        self._settle()
        if self._n == 0 or self._last is None:
            return []
        n = self._n
        if self._still:
            t, t_leave = self._t_first, self._t_last
        else:
            t = t_leave = self._st / n
        seed = Seed(self._last, self._sx / n, self._sy / n, t, t_leave, self._split,
                    self._t_first, self._t_last)
        self._n = 0
        self._sx = self._sy = self._st = 0.0
        self._tail = []
        return [seed]

    def end(self) -> list[Seed]:
        """The open cluster as a step where the track ends (input over, a long silence).

        A vehicle still driving when its fixes stop got as far as its last fix, but the
        cluster's mean lags behind that by half the cluster: at 1 Hz, the last 10-20 m
        of its last street. Where position-only fixes show it driving on to the end
        (``geo.recede``), the last fix is a step of its own as well.
        """
        self._settle()
        last = self._last
        onward = None
        if last is not None and self._n > 1 and not self._still and last.speed_mps is None:
            onward = self._runs.driving_on(self._move(last))
        seeds = self.close()
        if onward is not None and seeds:
            seeds.append(Seed.at(*onward))
        self.reset()
        return seeds

    def _settle(self) -> None:
        """Fixes still awaiting a second opinion join the cluster: none is coming."""
        for f in self._far:
            self._join(*f)  # never confirmed: it was noise
        self._far = []
        if self._near is not None:
            self._join(*self._near)  # nothing came after: count it as standing
            self._near = None

    def _move(self, p: Ping) -> float:
        """How far from a cluster a fix must be to say the vehicle has left it."""
        return self.m.config.min_move_sigmas * self.m.sigma(p.accuracy_m)

    def _speedless(self, p: Ping, x: float, y: float, move: float,
                   prev: tuple[float, float, float] | None) -> list[Seed]:
        """No reported speed: a new cluster once the vehicle has clearly left this one.

        Fixes seconds apart must be far from the cluster's mean twice in a row, and
        near each other or each on from the last the same way out: one fix in a few
        dozen lands that far off by noise alone, and a depot stay is thousands of fixes
        (after half a minute standing, four in a row). A slow vehicle driving into a
        dead end and back drags the mean along, so fixes that recede steadily from
        where the cluster began count as far too.
        Fixes far apart in time must imply at least walking pace, which noise spread
        over a minute never does.
        """
        n = self._n
        near = math.hypot(x - self._sx / n, y - self._sy / n) < move
        d0 = math.hypot(x - self._x0, y - self._y0)
        self._rising = self._rising + 1 if d0 >= self._d0 + 1.0 else 0
        self._d0 = d0
        if near and d0 >= move and self._rising >= _RECEDING:
            # Steadily further from where the cluster began: driving away (into a
            # dead end, say), though the mean, dragged along, is still near.
            near = False
        if prev is not None and p.t - prev[2] >= _CONFIRM_S:
            return self._sparse(p, x, y, near, prev)
        if prev is not None:
            turn = self._runs.turned_back(move)
            seeds = None if turn is None else self._turn_back(turn, p, x, y)
            if seeds is not None:
                return seeds
        if self._near is not None:
            self._join(*self._near)
            self._near = None
            self.stats.decimated += 1
        if near:
            for f in self._far:
                self._join(*f)
            self._far = []
            self._join(p, x, y)
            self.stats.decimated += 1
            return []
        far = self._far
        if far and (math.hypot(x - far[0][1], y - far[0][2]) < move
                    or _onward(far[-1], x, y, self._sx / n, self._sy / n, move)):
            far.append((p, x, y))
            # A vehicle that has stood here a while needs more to be believed gone:
            # over half an hour, jitter throws pairs of fixes far out again and again.
            stayed = p.t - self._t_first >= _LONG_STAY_S
            if len(far) < (_FAR_CONFIRM_STAYED if stayed else 2):
                return []
            self._far = []
            seeds = self._restart(*far[0])
            onward = False
            for f in far[1:]:
                # Near the first, one cluster with it; further on, the next far fix
                # (a vehicle driving away is a step every few fixes, not one blur).
                onward = onward or math.hypot(f[1] - far[0][1], f[2] - far[0][2]) >= move
                if onward:
                    seeds += self._speedless(*f, move, None)
                else:
                    self._join(*f)
            return seeds
        for f in far:
            self._join(*f)
        self._far = [(p, x, y)]
        return []

    def _sparse(self, p: Ping, x: float, y: float, near: bool,
                prev: tuple[float, float, float]) -> list[Seed]:
        """A speedless fix seconds after the last one.

        Back near the cluster is standing still, or a loop round the block or into a
        dead end and back; only the next fix tells (still near: standing), so it waits
        for that. Away from it must imply at least walking pace, which noise spread
        over many seconds never does.
        """
        held, self._near = self._near, None
        if near:
            if held is None:
                self._near = (p, x, y)
                return []
            self._join(*held)
            self._join(p, x, y)
            self.stats.stationary += 2
            return []
        seeds = self._restart(*held) if held is not None else []
        if math.hypot(x - prev[0], y - prev[1]) >= (
                self.m.config.stationary_speed_mps * (p.t - prev[2])):
            return seeds + self._restart(p, x, y)
        self._join(p, x, y)
        self.stats.stationary += 1
        return seeds

    def _turn_back(self, turn: Fix, p: Ping, x: float, y: float) -> list[Seed] | None:
        """The cluster up to where the vehicle turned, that fix as a step, and a new
        cluster from the fixes since.

        A vehicle that noses into a dead end shorter than the cluster's reach and turns
        round leaves no fix far from the cluster's mean: without this the poke would
        vanish into one step, and the dead end with it.
        """
        q = turn[0]
        if q.t < self._t_first:
            return None  # it turned in a cluster already closed: that one ended there
        later = [f for f in self._tail if f[0].t > q.t]
        if len(later) >= min(self._n, len(self._tail)):
            return None  # (the tail is longer than any turn's aftermath: not reached)
        for f in reversed(later):  # joined after the turn: they start the next cluster
            self._unjoin(*f)
        later += [f for f in self._far if f[0].t > q.t]
        self._far = [f for f in self._far if f[0].t <= q.t]
        if self._near is not None and self._near[0].t > q.t:
            later.append(self._near)
            self._near = None
        seeds = self.close()
        if not (seeds and seeds[-1].first_fix == seeds[-1].last_fix == q.t):
            # (Unless the cluster left is the turn alone: it is that step already.)
            seeds.append(Seed.at(*turn))
        self.stats.turns_back += 1
        later.sort(key=lambda f: f[0].t)
        later.append((p, x, y))
        self._start(*later[0], False)
        for f in later[1:]:
            self._join(*f)
        return seeds

    def _restart(self, p: Ping, x: float, y: float) -> list[Seed]:
        seeds = self.close()
        self._start(p, x, y, False)
        return seeds

    def _start(self, p: Ping, x: float, y: float, split: bool) -> None:
        cfg = self.m.config
        self._still = p.speed_mps is not None and p.speed_mps < cfg.stationary_speed_mps
        self._state = (p.plow, p.spreader)
        self._head = _heading(p)
        self._split = split
        self._t_first = p.t
        self._x0, self._y0, self._d0, self._rising = x, y, 0.0, 0
        self._join(p, x, y)

    def _join(self, p: Ping, x: float, y: float) -> None:
        self._n += 1
        self._sx += x
        self._sy += y
        self._st += p.t
        self._t_last = p.t
        self._last = p
        self._tail.append((p, x, y))
        if len(self._tail) > _TAIL:
            del self._tail[0]

    def _unjoin(self, p: Ping, x: float, y: float) -> None:
        """Take the newest joined fix back out of the cluster."""
        self._tail.pop()
        self._n -= 1
        self._sx -= x
        self._sy -= y
        self._st -= p.t
        if self._tail:
            self._last = self._tail[-1][0]
            self._t_last = self._last.t


def _onward(last: tuple[Ping, float, float], x: float, y: float, cx: float,
            cy: float, move: float) -> bool:
    """Fix (x, y) carries on from the last far fix, away from the cluster at (cx, cy).

    A vehicle pulling away at speed puts its fixes seconds apart tens of metres from
    each other: they are not near each other, yet each confirms the one before it.
    Jitter around a standing vehicle does not march outwards in one direction. Only
    a step of at least ``move``: shorter ones are the nearness rule's.
    """
    _, lx, ly = last
    ox, oy = lx - cx, ly - cy  # the cluster to the last far fix
    dx, dy = x - lx, y - ly  # ... and on to this fix
    step = math.hypot(dx, dy)
    return step >= move and ox * dx + oy * dy >= _TURN_COS * math.hypot(ox, oy) * step


def _heading(p: Ping) -> tuple[float, float] | None:
    if p.heading_deg is None or not math.isfinite(p.heading_deg):
        return None
    h = math.radians(p.heading_deg)
    return math.sin(h), math.cos(h)
