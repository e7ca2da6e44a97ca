"""FMM (PyPI ``fastmm``, C++ HMM map matching with a precomputed UBODT) as a baseline.

Turns the same blocks plowshare matches on into a fastmm network (metres, one edge
per legal driving direction), matches each vehicle's pings, and converts the matched
path into covered intervals per block-direction per pass, so the same "one pass
covers >= min_fraction of the block" rule decides coverage for both engines.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import fastmm
from pyproj import Transformer

from bench.blade_rule import BLADE_RULES, blade_pieces
from geo.emit import Cleared, Piece
from geo.graph import StreetGraph
from geo.network import Segment

# Plow speeds top out at 12 m/s; a path between two fixes is at most that times the
# interval, plus slack for detours around blocks.
_MAX_SPEED_MPS = 15.0
_MIN_DELTA_M = 1000.0


@contextlib.contextmanager
def _quiet_stdout() -> Iterator[None]:
    """fastmm's C++ logger writes every step to fd 1; keep benchmark output readable."""
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


@dataclass(frozen=True, slots=True)
class FmmPing:
    lon: float
    lat: float
    t: float  # epoch seconds
    plow: bool | None = None


# Each vehicle's matched path with its pings, time-ordered (FmmBaseline.match).
Matched = list[tuple[fastmm.SplitMatchResult, list[FmmPing]]]


@dataclass(frozen=True, slots=True)
class _EdgeInfo:
    source_id: str
    length: float  # planar metres of the projected geometry


class FmmBaseline:
    """One fastmm network per street network; UBODTs cached on disk per delta."""

    def __init__(
        self,
        segments: Sequence[Segment],
        cache_dir: Path,
        *,
        gps_error_m: float = 10.0,
        search_radius_m: float = 50.0,
        max_candidates: int = 16,
    ) -> None:
        graph = StreetGraph(segments)
        lons = [c[0] for s in segments for c in s.coords]
        lats = [c[1] for s in segments for c in s.coords]
        lon0, lat0 = (min(lons) + max(lons)) / 2, (min(lats) + max(lats)) / 2
        # Transverse Mercator on the network's centre: scale error < 1e-4 over an
        # extract, so planar metres are ground metres for FMM's distances.
        self._to_xy = Transformer.from_crs(
            "EPSG:4326",
            f"+proj=tmerc +lat_0={lat0} +lon_0={lon0} +k=1 +units=m +ellps=WGS84",
            always_xy=True,
        )
        self._cache_dir = cache_dir
        self._gps_error = gps_error_m
        self._radius = search_radius_m
        self._k = max_candidates
        self.reverse_tolerance = 0.0
        nodes: dict[str, int] = {}
        self._edges: dict[int, _EdgeInfo] = {}
        self.network = fastmm.Network()
        with _quiet_stdout():
            for edge in graph.edges:
                xs, ys = self._to_xy.transform(
                    [c[0] for c in edge.coords], [c[1] for c in edge.coords]
                )
                geom = list(zip(xs, ys, strict=True))
                a = nodes.setdefault(edge.from_node, len(nodes))
                b = nodes.setdefault(edge.to_node, len(nodes))
                self.network.add_edge(edge.index, a, b, geom=geom)
                length = sum(
                    ((x1 - x0) ** 2 + (y1 - y0) ** 2) ** 0.5
                    for (x0, y0), (x1, y1) in pairwise(geom)
                )
                self._edges[edge.index] = _EdgeInfo(edge.source_id, length)
            self.network.finalize()
        self._matchers: dict[float, fastmm.FastMapMatch] = {}

    def tune(self, sigma_m: float, interval_s: float) -> None:
        """Set fastmm's knobs for the pings' error and spacing, at their best.

        Chosen by a grid search (gps_error 1-3 sigma, reverse tolerance 0-6 sigma,
        8 or 16 candidates, 50 or 100 m radius) on a fleet seed the benchmark does not
        score, Krems + Baltimore + Andorra. Dense pings want a wide emission and some
        backward slip on an edge read as noise (else a fix that jitters backwards
        becomes a loop around the block: precision 0.79 -> 0.99 at 1 s / 10 m); sparse
        pings want the emission at the true sigma and no slip. Candidates and radius
        hardly mattered; 16 and max(50 m, 4 sigma) are kept.
        """
        sigma = max(sigma_m, 3.0)
        dense = interval_s <= 5.0
        self._gps_error = 2.0 * sigma if dense else sigma
        self.reverse_tolerance = 3.0 * sigma if dense else 0.0
        self._radius = max(50.0, 4.0 * sigma)
        self._k = 16

    def delta_for(self, interval_s: float) -> float:
        return max(_MIN_DELTA_M, round(_MAX_SPEED_MPS * interval_s * 1.5, -2))

    def prepare(self, interval_s: float) -> fastmm.FastMapMatch:
        """Matcher whose UBODT reaches as far as a truck drives between two pings."""
        delta = self.delta_for(interval_s)
        matcher = self._matchers.get(delta)
        if matcher is None:
            with _quiet_stdout():
                matcher = fastmm.FastMapMatch(
                    self.network,
                    fastmm.TransitionMode.SHORTEST,
                    max_distance_between_candidates=delta,
                    cache_dir=self._cache_dir,
                )
            self._matchers[delta] = matcher
        return matcher

    def match(
        self, pings_by_vehicle: dict[str, list[FmmPing]], interval_s: float
    ) -> Matched:
        """fastmm's matched path of each vehicle with two or more pings, time-ordered."""
        matcher = self.prepare(interval_s)
        out: Matched = []
        for pings in pings_by_vehicle.values():
            if len(pings) < 2:
                continue
            pings = sorted(pings, key=lambda p: p.t)
            xs, ys = self._to_xy.transform([p.lon for p in pings], [p.lat for p in pings])
            t0 = pings[0].t
            points = [(x, y, p.t - t0) for x, y, p in zip(xs, ys, pings, strict=True)]
            with _quiet_stdout():
                result = matcher.match(
                    fastmm.Trajectory.from_xyt_tuples(points),
                    max_candidates=self._k,
                    candidate_search_radius=self._radius,
                    gps_error=self._gps_error,
                    reverse_tolerance=self.reverse_tolerance,
                )
            out.append((result, pings))
        return out

    def coverage_of(
        self, matched: Matched, blade_rule: str = "placed",
    ) -> dict[str, float]:
        """Per block: largest share covered in one blade-down pass (0 if never matched).

        ``blade_rule`` says where the blade went up or down between two pings that
        differ (``bench.blade_rule``): "placed" where plowshare's engine would put it,
        so both engines are scored under one rule; "either" credits the whole step.
        """
        if blade_rule not in BLADE_RULES:
            raise ValueError(f"blade_rule must be one of {BLADE_RULES}, not {blade_rule!r}")
        best: dict[str, float] = {}
        for result, pings in matched:
            for edge_id, lo, hi in self._passes(result, pings, blade_rule):
                info = self._edges[edge_id]
                frac = 1.0 if info.length <= 0 else min(max((hi - lo) / info.length, 0.0), 1.0)
                if frac > best.get(info.source_id, 0.0):
                    best[info.source_id] = frac
        return best

    def _length(self, edge_id: int) -> float:
        return self._edges[edge_id].length

    def _passes(
        self, result: fastmm.SplitMatchResult, pings: Sequence[FmmPing], blade_rule: str
    ) -> Iterator[tuple[int, float, float]]:
        """(edge, lo, hi) per pass: consecutive blade-down pieces on one edge, merged."""
        cleared = Cleared()  # this vehicle's plowing, for the "placed" blade rule
        for sub in result.subtrajectories:
            if sub.error_code != fastmm.MatchErrorCode.SUCCESS:
                continue
            current: list[float] | None = None  # [edge, lo, hi]
            for seg in sub.segments:
                a, b = pings[seg.p0.trajectory_index], pings[seg.p1.trajectory_index]
                route: list[Piece] = []
                for k, edge in enumerate(seg.edges):
                    # On a step's first edge fastmm measures points from the step's
                    # entry point (p0), elsewhere from the edge's start.
                    base = seg.p0.offset_from_start_of_edge if k == 0 else 0.0
                    offs = [base + p.edge_offset for p in edge.points] or [base]
                    route.append((int(edge.edge_id), min(offs), max(offs)))
                pieces = blade_pieces(route, a.plow, b.plow,
                                      a.t, b.t, cleared, self._length, blade_rule)
                for eid, lo, hi, down in pieces:
                    if current is not None and current[0] == eid and lo <= current[2] + 1.0:
                        if down:
                            current[2] = max(current[2], hi)
                        continue
                    if current is not None:
                        yield int(current[0]), current[1], current[2]
                        current = None
                    if down:
                        current = [float(eid), lo, hi]
            if current is not None:
                yield int(current[0]), current[1], current[2]
