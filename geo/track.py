"""One vehicle's online Viterbi: fixed-lag decoding over steps, route emission.

Fixes are first grouped into steps (``geo.cluster``): a vehicle standing still is one
step, so jitter cannot turn into driving. Each step's candidates are scored against
the previous step's (``geo.transition``); a step becomes final once every surviving
hypothesis agrees on it, or ``lag`` steps later, and the route to it is emitted.
Fixes no route can reach are held: one is an outlier and skipped, several in a row
mean the vehicle left the map (or the map lacks a road), and the track is split, where
among the steps not yet final the two chains explain the fixes best (``_split_at``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import TYPE_CHECKING

import numpy as np

from geo.cluster import Clusterer, Seed
from geo.emit import Cleared, traversals
from geo.matchtypes import Ping, Traversal
from geo.transition import Step, transition

if TYPE_CHECKING:
    from geo.match import Matcher

_NEG = -math.inf
_PACE_MOVES = 2  # one move is too little to tell a vehicle's pace (it may have slowed)
_SHARE_MARGIN = 1.0  # log-units: see Track._split_at
_DRIVEN_KEEP = 32  # final moves kept for the pace; far more than a window holds


@dataclass(slots=True)
class TrackStats:
    """What happened to the fixes pushed into one track (for monitoring, not logic)."""

    pings: int = 0
    stale: int = 0  # not newer than the previous fix: ignored
    foreign: int = 0  # another vehicle's fix: ignored
    invalid: int = 0  # non-finite coordinates or time
    stationary: int = 0  # standing still
    decimated: int = 0  # moving, but too close to the previous step to matter
    turns_back: int = 0  # fixes that turned round within a cluster's reach (geo.cluster)
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
        self._clusters = Clusterer(matcher, self.stats)
        self._anchor: Step | None = None  # last final step
        self._pending: list[Step] = []
        self._score: list[float] = []  # Viterbi scores of the newest step
        self._root: list[int] = []  # its candidates' ancestors in _pending[0]
        self._held: list[Step] = []  # fixes no route reaches (outliers, or a split)
        self._cleared = Cleared()  # streets this vehicle has plowed
        self._driven: list[tuple[float, float]] = []  # (metres, seconds) of final moves

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
        keep: list[Seed] = []
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
                keep += self._clusters.end()
            keep += self._clusters.add(p, x, y, split)
        return self._steps(keep)

    def flush(self) -> list[Traversal]:
        """Finalise everything (end of input, or a silence the caller knows is long)."""
        out = self._steps(self._clusters.end())
        return out + self._finish()

    def _steps(self, seeds: list[Seed]) -> list[Traversal]:
        if not seeds:
            return []
        m = self.m
        sig = np.array([m.sigma(k.ping.accuracy_m) for k in seeds])
        hx, hy, hw = self._headings([k.ping for k in seeds])
        cands = m.candidates(np.array([k.x for k in seeds]), np.array([k.y for k in seeds]),
                             sig, hx, hy, hw)
        out: list[Traversal] = []
        for seed, s, c in zip(seeds, sig.tolist(), cands, strict=True):
            if seed.split:
                self.stats.splits += 1
                out += self._finish()
            if not c[0]:
                self.stats.no_candidates += 1
                continue
            self.stats.steps += 1
            out += self._add(Step(seed, s, c))
        return out

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
        step.gap = max(step.t - prev.t_leave, 0.0)
        pace = self._pace(prev) if step.speed is None or prev.speed is None else -1.0
        score, back, kind, dist = transition(self.m, prev, self._score, step, pace)
        if max(score) == _NEG:
            self.stats.outliers += 1
            self._held.append(step)
            if len(self._held) < self.m.config.outlier_tolerance:
                return []  # skip this fix, keep the chain
            return self._split()
        self._held = []
        self._score = _plus(score, step.emis)
        step.score = self._score
        if self._pending:
            root = self._root
            self._root = [root[b] if b >= 0 else -1 for b in back]
        else:
            self._root = list(range(len(back)))  # this step is the first pending
        step.back, step.kind, step.dist = back, kind, dist
        self._pending.append(step)
        return self._commit_ready()

    def _pace(self, prev: Step) -> float:
        """Recent speed (m/s) by the route of the best hypothesis ending at ``prev``.

        Matched metres over seconds of driving (standing still excluded) of its last
        moves, back through the final ones, over about ``pace_window_s``; -1 when too
        little is known. Only sparse moves (longer than ``pace_min_gap_s``) count: fixes a
        second apart do not need a pace, and a vehicle crawling from one cluster of them
        to the next is not driving at its earlier pace.
        """
        cfg = self.m.config
        window, min_gap = cfg.pace_window_s, cfg.pace_min_gap_s
        metres = secs = 0.0
        moves = 0
        if self._pending and self._pending[-1] is prev:
            j = max(range(len(self._score)), key=self._score.__getitem__)
            for step in reversed(self._pending):
                if j < 0 or secs >= window or not step.dist:
                    break
                if step.gap > min_gap:
                    metres += step.dist[j]
                    secs += step.gap
                    moves += 1
                j = step.back[j]
        for m_, s_ in reversed(self._driven):
            if secs >= window:
                break
            if s_ > min_gap:
                metres += m_
                secs += s_
                moves += 1
        return metres / secs if moves >= _PACE_MOVES and secs >= 0.5 * window else -1.0

    def _split(self) -> list[Traversal]:
        """Persistently unreachable fixes: off the map, or a road the map lacks.

        The chain ends and a new one starts; the held fixes (and perhaps the last
        pending steps, see ``_split_at``) start it rather than being lost.
        """
        self.stats.splits += 1
        held, self._held = self._held, []
        keep, share = self._split_at(held[0])
        moved = self._pending[keep:]
        if share:
            keep += 1  # the old chain ends on this step, the new one starts on it
            moved[0] = moved[0].fresh()
        if keep < len(self._pending):
            self._score = self._consistent(keep - 1) if keep else []
            del self._pending[keep:]
        out = self._finish()
        restart = moved + held
        out += self._start(restart[0])
        for h in restart[1:]:
            out += self._add(h)
        return out

    def _split_at(self, first: Step) -> tuple[int, bool]:
        """Where the split that ``first`` forces goes: (pending steps kept, shared).

        A vehicle that leaves the map (or drives a road the map lacks) is not seen
        to leave at once: for a few fixes the chain holds on, explaining them as
        standing at the last street it could reach, until fixes no route reaches
        force the split. Those steps may belong to the new chain instead, and with
        them the start of the street the vehicle came back onto; and the step where
        the two meet may be on both (the end of one street, the start of the next,
        where the map lacks the few metres between them). Of the places the split
        could be, in the pending (not yet final) steps or just before ``first``, the
        one whose two chains score best together is taken: they explain the same
        fixes either way, with one split each (a shared step's fix counts once).
        """
        pending = self._pending
        n = len(pending)
        best, where = max(self._score, default=_NEG) + max(self._prior(first)), (n, False)
        shared, share_at = _NEG, (n, False)
        # The new chain must start later than this one did (before the anchor, or at
        # pending[0]): otherwise a chain that fails again could restart forever.
        last = 0 if self._anchor is not None else 1
        for k in range(n - 1, last - 1, -1):
            prior = self._prior(pending[k])
            for share in (False, True):
                if share:
                    old = self._consistent(k)
                    top = max(pending[k].emis)
                    start = [e - top for e in prior]
                else:
                    old = self._consistent(k - 1) if k else self._anchor_score()
                    start = prior
                before = max(old, default=_NEG)
                if before == _NEG:
                    continue
                total = before + self._chain_score(start, [*pending[k:], first])
                if total > best:
                    best, where = total, (k, share)
                if share and total > shared:
                    shared, share_at = total, (k, share)
        # A new chain's first step pays for no route into it; a shared step pays for
        # the route out of it. Within about one route's cost of the best, sharing is
        # the better account: it loses neither street's end.
        return share_at if shared >= best - _SHARE_MARGIN else where

    def _prior(self, step: Step) -> list[float]:
        """Scores of a chain's first step: its emissions, less the wrong-way penalty.

        A chain that starts on a one-way, going against it, entered it that way
        (the transition charges that on entering, and a start has no entering).
        """
        wrong = self.m.net.wrong_way
        pen = self.m.config.wrong_way_penalty_m / self.m.config.beta_m
        return [e - pen if wrong[c] else e for c, e in zip(step.edges, step.emis, strict=True)]

    def _chain_score(self, score: list[float], steps: list[Step]) -> float:
        """Best Viterbi score of a fresh chain over ``steps`` (``score``: the first's)."""
        for prev, cur in pairwise(steps):
            score = _plus(transition(self.m, prev, score, cur)[0], cur.emis)
            if max(score) == _NEG:
                return _NEG
        return max(score)

    def _anchor_score(self) -> list[float]:
        """The final anchor's score on its chosen state (a chain that ends there)."""
        a = self._anchor
        return [a.score[a.chosen]] if a is not None and a.score else [_NEG]

    def _consistent(self, pos: int) -> list[float]:
        """Scores of pending step ``pos``'s candidates on chains through the final anchor."""
        pending = self._pending
        score = pending[pos].score
        anchor = self._anchor
        if anchor is None or not pending[0].back:
            return list(score)
        out = []
        for j, sc in enumerate(score):
            a = self._ancestor(j, 0, pos)
            ok = a >= 0 and pending[0].back[a] == anchor.chosen
            out.append(sc if ok else _NEG)
        return out

    def _start(self, step: Step) -> list[Traversal]:
        step.back, step.kind, step.dist, step.gap = [], [], [], 0.0  # no route into it
        self._anchor = None
        self._pending = [step]
        self._score = self._prior(step)
        step.score = self._score
        self._root = list(range(len(step.edges)))
        self._held = []
        return self._commit_ready()

    def _commit_ready(self) -> list[Traversal]:
        """Make final every leading step all surviving hypotheses agree on (or too old)."""
        out: list[Traversal] = []
        lag = self.m.config.lag
        while self._pending:
            score, root = self._score, self._root
            c = -1
            for r, sc in zip(root, score, strict=True):
                if sc > _NEG:
                    if c == -1:
                        c = r
                    elif r != c:
                        c = -2  # hypotheses still disagree on the first pending step
                        break
            if c >= 0:
                conf = 1.0
            elif len(self._pending) > lag:
                best = max(range(len(score)), key=score.__getitem__)
                c = root[best]
                conf = self._share(root, c)
                # Hypotheses through another state here can no longer win.
                self._score = [sc if r == c else _NEG for sc, r in zip(score, root, strict=True)]
            else:
                break
            out += self._commit(c, conf)
            if self._pending:
                self._root = [self._ancestor(j, 0) for j in range(len(self._score))]
        return out

    def _ancestor(self, j: int, pos: int, of: int | None = None) -> int:
        """Candidate at pending[pos] that candidate ``j`` of pending[of] (default: the
        newest) descends from."""
        for step in reversed(self._pending[pos + 1:None if of is None else of + 1]):
            if j < 0:
                return -1
            j = step.back[j]
        return j

    def _share(self, anc: list[int], c: int) -> float:
        """Posterior share (max-product) of hypotheses whose ancestor (``anc``) is ``c``."""
        top = max(self._score)
        total = agree = 0.0
        for sc, a in zip(self._score, anc, strict=True):
            if sc > _NEG:
                w = math.exp(sc - top)
                total += w
                if a == c:
                    agree += w
        return agree / total if total > 0 else 0.0

    def _commit(self, c: int, conf: float) -> list[Traversal]:
        step = self._pending.pop(0)
        step.chosen, step.conf = c, conf
        prev, self._anchor = self._anchor, step
        if prev is None:
            return []
        self._driven.append((step.dist[c], step.gap))
        if len(self._driven) > 2 * _DRIVEN_KEEP:
            del self._driven[:_DRIVEN_KEEP]
        return traversals(self.m, self.vehicle, prev, step, self._cleared)

    def _finish(self) -> list[Traversal]:
        out: list[Traversal] = []
        if self._pending:
            best = max(range(len(self._score)), key=self._score.__getitem__)
            n = len(self._score)
            path, confs = [], []
            for pos in range(len(self._pending)):
                anc = [self._ancestor(j, pos) for j in range(n)]
                path.append(anc[best])
                confs.append(self._share(anc, anc[best]))
            for c, conf in zip(path, confs, strict=True):
                out += self._commit(c, conf)
        self._anchor = None
        self._pending = []
        self._score, self._root = [], []
        self._held = []
        self._driven = []
        return out


def _plus(score: list[float], emis: list[float]) -> list[float]:
    """Viterbi scores with a step's emissions added (dead hypotheses stay dead)."""
    return [s + e if s > _NEG else _NEG for s, e in zip(score, emis, strict=True)]
