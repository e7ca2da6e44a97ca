"""One vehicle's online Viterbi: fix filtering, fixed-lag decoding, route emission.

Only fixes that carry new information become HMM steps: a vehicle standing still
(reported speed ~0, or no speed and no displacement beyond the noise) adds nothing
but the chance to invent a pass out of jitter, and at 1 Hz most fixes of a moving
vehicle are a few metres apart and cost time without changing the decoded route.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from geo.emit import traversals
from geo.matchtypes import Ping, Traversal
from geo.transition import Step, transition

if TYPE_CHECKING:
    from geo.match import Matcher

_NEG = -math.inf
_TURN_COS = 0.5  # a heading change beyond 60 degrees is worth a step of its own
Seed = tuple[Ping, float, float, float, float]  # newest fix, mean x, y, t, departure


@dataclass(slots=True)
class TrackStats:
    """What happened to the fixes pushed into one track (for monitoring, not logic)."""

    pings: int = 0
    stale: int = 0  # not newer than the previous fix: ignored
    foreign: int = 0  # another vehicle's fix: ignored
    invalid: int = 0  # non-finite coordinates or time
    stationary: int = 0  # standing still
    decimated: int = 0  # moving, but too close to the previous step to matter
    no_candidates: int = 0  # no street within the search radius
    outliers: int = 0  # no plausible route from the previous step
    splits: int = 0  # track cut: long silence or persistent outliers
    steps: int = 0  # fixes that became HMM steps


class Track:
    """Online matcher of one vehicle: ``push`` fixes in time order, get final traversals."""

    def __init__(self, matcher: Matcher, vehicle: str) -> None:
        self.m = matcher
        self.vehicle = vehicle
        self.stats = TrackStats()
        self._last_t = _NEG
        # The fix last made a step: time, sensor state, heading vector.
        self._ref: tuple[float, tuple[bool | None, bool | None],
                         tuple[float, float] | None] | None = None
        self._cx = self._cy = 0.0  # mean of fixes since then (speedless stand-still test)
        self._cn = 0
        self._still_t: float | None = None  # last stationary fix since the ref
        self._grp = [0.0, 0.0, 0.0, 0.0]  # sums of x, y, t, count of the fixes since
        self._grp_last: Ping | None = None  # newest fix of the group: its sensors
        self._grp_depart = 0.0
        self._anchor: Step | None = None  # last final step
        self._pending: list[Step] = []
        self._score: list[float] = []  # Viterbi scores of the newest step
        self._anc: list[tuple[int, ...]] = []  # its candidates' ancestors in _pending
        self._held: list[Step] = []  # fixes no route reaches (outliers, or a split)

    # --- public ---------------------------------------------------------------------

    def push(self, ping: Ping) -> list[Traversal]:
        """Add one fix; returns the traversals that became final."""
        return self.push_many((ping,))

    def push_many(self, pings: Sequence[Ping]) -> list[Traversal]:
        """Add fixes in time order; same result as pushing them one by one, faster."""
        if not pings:
            return []
        m, cfg = self.m, self.m.config
        xs, ys = m.proj.to_xy([p.lon for p in pings], [p.lat for p in pings])
        keep: list[tuple[Seed, bool]] = []
        for p, x, y in zip(pings, xs.tolist(), ys.tolist(), strict=True):
            self.stats.pings += 1
            if p.vehicle != self.vehicle:
                self.stats.foreign += 1
                continue
            if not (math.isfinite(x) and math.isfinite(y) and math.isfinite(p.t)):
                self.stats.invalid += 1
                continue
            if p.t <= self._last_t:
                self.stats.stale += 1
                continue
            split = p.t - self._last_t > cfg.max_gap_s and self._last_t > _NEG
            self._last_t = p.t
            if split:
                keep += [(seed, False) for seed in self._close()]
                self._reset()
            for k, seed in enumerate(self._admit(p, x, y)):
                keep.append((seed, split and k == 0))
        return self._steps(keep)

    def _steps(self, keep: list[tuple[Seed, bool]]) -> list[Traversal]:
        if not keep:
            return []
        m = self.m
        sig = np.array([m.sigma(k[0][0].accuracy_m) for k in keep])
        hx, hy, hw = self._headings([k[0][0] for k in keep])
        cands = m.candidates(np.array([k[0][1] for k in keep]),
                             np.array([k[0][2] for k in keep]), sig, hx, hy, hw)
        out: list[Traversal] = []
        for ((p, x, y, t, depart), split), s, c in zip(keep, sig.tolist(), cands, strict=True):
            if split:
                self.stats.splits += 1
                out += self._finish()
            if not c[0]:
                self.stats.no_candidates += 1
                continue
            self.stats.steps += 1
            out += self._add(Step(p, x, y, t, depart, s, c))
        return out

    def flush(self) -> list[Traversal]:
        """Finalise everything (end of input, or a silence the caller knows is long)."""
        out = self._steps([(seed, False) for seed in self._close()])
        self._reset()
        return out + self._finish()

    def _reset(self) -> None:
        self._ref = None
        self._still_t = None
        self._grp = [0.0, 0.0, 0.0, 0.0]
        self._grp_last = None

    # --- which fixes become steps ---------------------------------------------------

    def _admit(self, p: Ping, x: float, y: float) -> list[Seed]:
        """The steps this fix completes: usually none (it joins a group), or one.

        A step stands for the moving fixes since the previous one: their mean position
        and time. Dropping them instead would throw away exactly the evidence that
        tells a street from a parallel one 15 m away. A turn, a change of blade or
        spreader, or a stop ends the group early, so that the step does not average
        across the change.
        """
        cfg = self.m.config
        state = (p.plow, p.spreader)
        head = None
        if p.heading_deg is not None and math.isfinite(p.heading_deg):
            h = math.radians(p.heading_deg)
            head = (math.sin(h), math.cos(h))
        ref = self._ref
        if ref is None:
            return self._single(p, x, y, p.t, head)
        rt, rstate, rhead = ref
        sp = p.speed_mps
        if sp is not None and sp < cfg.stationary_speed_mps and state == rstate:
            self.stats.stationary += 1
            # Where it stopped is a step of its own, not averaged with where it will
            # be once it drives on.
            seeds = self._close()
            self._still_t = p.t
            return seeds
        depart = self._still_t if self._still_t is not None else rt
        turned = (head is not None and rhead is not None
                  and head[0] * rhead[0] + head[1] * rhead[1] < _TURN_COS)
        if turned or state != rstate:
            return self._close() + self._single(p, x, y, depart, head)
        move = cfg.min_move_sigmas * self.m.sigma(p.accuracy_m)
        if sp is not None:
            # Moving: how far it went by its own speed, not by two noisy fixes (whose
            # difference is mostly noise at 1 Hz).
            done = sp * (p.t - rt) >= move or p.t - rt >= cfg.max_skip_s
        else:
            # No speed: moving only once clearly away from where the fixes have been
            # gathering; their mean is steadier than any single noisy fix.
            done = math.hypot(x - self._cx, y - self._cy) >= 0.8 * move
            n = self._cn + 1
            self._cx += (x - self._cx) / n
            self._cy += (y - self._cy) / n
            self._cn = n
        self._group(p, x, y)
        if not done:
            self.stats.decimated += 1
            return []
        seeds = self._close()
        self._ref = (p.t, state, head)
        self._cx, self._cy, self._cn = x, y, 1
        return seeds

    def _single(self, p: Ping, x: float, y: float, depart: float,
                head: tuple[float, float] | None) -> list[Seed]:
        self._still_t = None
        self._ref = (p.t, (p.plow, p.spreader), head)
        self._cx, self._cy, self._cn = x, y, 1
        return [(p, x, y, p.t, depart)]

    def _close(self) -> list[Seed]:
        gx, gy, gt, gn = self._grp
        last = self._grp_last
        if gn == 0 or last is None:
            return []
        self._grp = [0.0, 0.0, 0.0, 0.0]
        self._grp_last = None
        depart = self._grp_depart
        self._still_t = None
        return [(last, gx / gn, gy / gn, gt / gn, depart)]

    def _group(self, p: Ping, x: float, y: float) -> None:
        g = self._grp
        if g[3] == 0:
            ref = self._ref
            self._grp_depart = (self._still_t if self._still_t is not None
                                else ref[0] if ref is not None else p.t)
        g[0] += x
        g[1] += y
        g[2] += p.t
        g[3] += 1.0
        self._grp_last = p

    def _headings(self, pings: Sequence[Ping]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        cfg = self.m.config
        hx, hy, hw = np.zeros(len(pings)), np.zeros(len(pings)), np.zeros(len(pings))
        for k, p in enumerate(pings):
            if p.heading_deg is None or not math.isfinite(p.heading_deg):
                continue
            h = math.radians(p.heading_deg)
            hx[k], hy[k] = math.sin(h), math.cos(h)
            if p.speed_mps is None:
                hw[k] = 0.5 * cfg.heading_weight  # may be a standing vehicle's noise
            elif p.speed_mps >= cfg.heading_min_speed_mps:
                hw[k] = cfg.heading_weight
        return hx, hy, hw

    # --- Viterbi --------------------------------------------------------------------

    def _add(self, step: Step) -> list[Traversal]:
        prev = self._pending[-1] if self._pending else self._anchor
        if prev is None:
            return self._start(step)
        score, back, kind = transition(self.m, prev, self._score, step)
        if max(score) == _NEG:
            self.stats.outliers += 1
            self._held.append(step)
            if len(self._held) < self.m.config.outlier_tolerance:
                return []  # skip this fix, keep the chain
            # Persistently unreachable: off the map, or a road the map lacks. Split,
            # and the held fixes start the new chain rather than being lost.
            self.stats.splits += 1
            held, self._held = self._held, []
            out = self._finish() + self._start(held[0])
            for h in held[1:]:
                out += self._add(h)
            return out
        self._held = []
        emis = step.emis
        self._score = [s + e if s > _NEG else _NEG for s, e in zip(score, emis, strict=True)]
        anc = self._anc
        self._anc = [anc[b] + (j,) if b >= 0 else () for j, b in enumerate(back)]
        step.back, step.kind = back, kind
        self._pending.append(step)
        return self._commit_ready()

    def _start(self, step: Step) -> list[Traversal]:
        self._anchor = None
        self._pending = [step]
        self._score = list(step.emis)
        self._anc = [(j,) for j in range(len(step.edges))]
        self._held = []
        return self._commit_ready()

    def _commit_ready(self) -> list[Traversal]:
        """Make final every leading step all surviving hypotheses agree on (or too old)."""
        out: list[Traversal] = []
        lag = self.m.config.lag
        while self._pending:
            score, anc = self._score, self._anc
            heads = {a[0] for a, s in zip(anc, score, strict=True) if s > _NEG}
            if len(heads) == 1:
                c, conf = heads.pop(), 1.0
            elif len(self._pending) > lag:
                best = max(range(len(score)), key=score.__getitem__)
                c = anc[best][0]
                conf = self._share(0, c)
                # Hypotheses through another state here can no longer win.
                self._score = [s if a and a[0] == c else _NEG
                               for s, a in zip(score, anc, strict=True)]
            else:
                break
            self._anc = [a[1:] for a in self._anc]
            out += self._commit(c, conf)
        return out

    def _share(self, pos: int, c: int) -> float:
        """Posterior share (max-product) of state ``c`` at pending ``pos``."""
        top = max(self._score)
        total = agree = 0.0
        for s, a in zip(self._score, self._anc, strict=True):
            if s > _NEG:
                w = math.exp(s - top)
                total += w
                if a[pos] == c:
                    agree += w
        return agree / total if total > 0 else 0.0

    def _commit(self, c: int, conf: float) -> list[Traversal]:
        step = self._pending.pop(0)
        step.chosen, step.conf = c, conf
        prev, self._anchor = self._anchor, step
        if prev is None:
            return []
        return traversals(self.m, self.vehicle, prev, step)

    def _finish(self) -> list[Traversal]:
        out: list[Traversal] = []
        if self._pending:
            best = max(range(len(self._score)), key=self._score.__getitem__)
            path = self._anc[best]
            confs = [self._share(p, c) for p, c in enumerate(path)]
            for c, conf in zip(path, confs, strict=True):
                out += self._commit(c, conf)
        self._anchor = None
        self._pending = []
        self._score, self._anc = [], []
        self._held = []
        return out
