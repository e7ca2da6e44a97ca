"""Online hidden-Markov-model map matching (after Newson & Krumm 2009).

Hidden states are *directed* edges at an offset: where on which block, driving which
way (one-ways also get a heavily penalised wrong-way state). Emission scores how far a
fix lies from that point and whether a reported heading agrees with the driving
direction; transition scores how well the shortest route between two states agrees
with the straight-line move of the fixes and, when speeds are reported, with speed x
time. Viterbi runs online per vehicle; a step becomes final as soon as every
surviving hypothesis agrees on it, or at the latest ``lag`` steps later, and the route
driven up to it is then emitted as :class:`Traversal` pieces. Routing between states
is what credits the blocks between sparse fixes.

Modules: ``geo.cluster`` (which fixes become steps), ``geo.track`` (per-vehicle
Viterbi), ``geo.transition`` (the hot loop), ``geo.emit`` (steps to traversals),
``geo.routing`` (directed graph, cached Dijkstra), ``geo.candidates`` (spatial index),
``geo.projection`` (local metric plane). This one holds the network-wide part, built
once, and re-exports the public types.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from geo.candidates import SegmentIndex
from geo.matchtypes import MatchConfig, Ping, Traversal
from geo.network import Segment
from geo.projection import FloatArray, LocalProjection
from geo.routing import RoutingNet
from geo.track import Track, TrackStats

SAME_PLACE_M = 25.0  # two projections of a fix onto one block closer than this are one


class Matcher:
    """Everything built once per network: projection, spatial index, routing graph."""

    def __init__(self, segments: Sequence[Segment], config: MatchConfig | None = None) -> None:
        if not segments:
            raise ValueError("cannot match on an empty network")
        self.config = config if config is not None else MatchConfig()
        self.segments = list(segments)
        self.proj = LocalProjection.around(c for s in self.segments for c in s.coords)
        lines: list[FloatArray] = []
        for s in self.segments:
            xs, ys = self.proj.to_xy([c[0] for c in s.coords], [c[1] for c in s.coords])
            lines.append(np.column_stack((xs, ys)))
        self.index = SegmentIndex(lines)
        lengths = [float(x) for x in self.index.length]
        # Offsets are computed on the plane; reported metres are the segment's own
        # geodesic length_m, so scale (the two differ by < 0.1 % near the centre).
        self.scale = [s.length_m / ln if ln > 0 else 0.0
                      for s, ln in zip(self.segments, lengths, strict=True)]
        # The routes' cost of a one-way driven backwards is that of passing through it
        # between two fixes; a fix on it pays wrong_way_penalty_m (geo.transition).
        self.net = RoutingNet(self.segments, self.index.lines,
                              wrong_way_penalty_m=self.config.hidden_wrong_way_m,
                              map_gap_m=self.config.map_gap_m,
                              map_gap_penalty_m=self.config.map_gap_penalty_m)

    def track(self, vehicle_id: str) -> Track:
        return Track(self, vehicle_id)

    def sigma(self, accuracy_m: float | None) -> float:
        c = self.config
        if accuracy_m is None or not math.isfinite(accuracy_m) or accuracy_m <= 0:
            return c.sigma_m
        return max(accuracy_m, c.sigma_floor_m)

    def candidates(
        self, xs: FloatArray, ys: FloatArray, sigma: FloatArray, hx: FloatArray,
        hy: FloatArray, hw: FloatArray,
    ) -> list[tuple[list[int], list[float], list[float]]]:
        """Per fix: candidate directed edges, offsets along them, emission log-scores.

        ``hx, hy`` is the reported heading as a unit vector (east, north) and ``hw`` its
        weight, 0 where there is no usable heading.
        """
        c = self.config
        radius = np.clip(4.0 * sigma, c.search_radius_m, c.max_search_radius_m)
        fix, seg, off, dist, dx, dy = self.index.near(xs, ys, radius)
        base = -0.5 * (dist / sigma[fix]) ** 2
        if len(fix):
            # Pairs come sorted by fix, then distance: the first of each fix is its
            # nearest block. Blocks far worse than that cannot win and only cost time.
            first = np.r_[True, fix[1:] != fix[:-1]]
            nearest = base[np.flatnonzero(first)][np.cumsum(first) - 1]
            keep = base >= nearest - c.emission_margin
            fix, seg, off, base = fix[keep], seg[keep], off[keep], base[keep]
            dx, dy = dx[keep], dy[keep]
        cos_fwd = hx[fix] * dx + hy[fix] * dy
        w = hw[fix]
        em_fwd = (base - w * (1.0 - cos_fwd)).tolist()
        em_back = (base - w * (1.0 + cos_fwd)).tolist()
        # A moving vehicle's heading is reliable to a few degrees: a direction more
        # than 120 degrees off it is not a candidate at all (after a U-turn the other
        # direction is the one that agrees). Halves the states on two-way streets.
        sure = w >= c.heading_weight
        ok_fwd = (~sure | (cos_fwd > -0.5)).tolist()
        ok_back = (~sure | (cos_fwd < 0.5)).tolist()
        out: list[tuple[list[int], list[float], list[float]]] = [
            ([], [], []) for _ in range(len(xs))
        ]
        net, length = self.net, self.net.length
        fix_l, seg_l, off_l = fix.tolist(), seg.tolist(), off.tolist()
        # Without a heading both directions of every block are states: room for more,
        # or a junction of many blocks (a roundabout) loses the one driven.
        caps_by_fix = np.where(hw >= c.heading_weight, c.max_candidates,
                               c.max_candidates_no_heading).tolist()
        seen: dict[tuple[int, int], list[float]] = {}
        forward, wrong, of_seg = net.forward, net.wrong_way, net.edges_of_seg
        for k, f in enumerate(fix_l):
            edges, offs, emis = out[f]
            if len(edges) >= caps_by_fix[f]:
                continue
            s, off = seg_l[k], off_l[k]
            # Adjacent chunks of a block report the same nearest point; a second
            # candidate on a block must be somewhere else (the other leg of a hairpin).
            kept = seen.get((f, s))
            if kept is None:
                seen[f, s] = [off]
            elif any(abs(off - o) < SAME_PLACE_M for o in kept):
                continue
            else:
                kept.append(off)
            for e in of_seg[s]:
                if forward[e]:
                    if ok_fwd[k]:
                        edges.append(e)
                        offs.append(off)
                        emis.append(em_fwd[k])
                elif ok_back[k]:
                    edges.append(e)
                    offs.append(max(length[e] - off, 0.0))
                    emis.append(em_back[k] - 1.0 if wrong[e] else em_back[k])
        return out


__all__ = ["MatchConfig", "Matcher", "Ping", "Track", "TrackStats", "Traversal"]

