"""Dead ends a few metres short of another road: where a street file most likely breaks.

A town's centreline file or OSM sometimes stops a road short for a few metres (a
digitising gap, a missing link, a yard between two service roads). Vehicles drive
across; the matcher joins two such dead ends (``geo.routing``), and an import lists
them so the file's owners can check them. A dead end that stops short of the middle
of another street (an undershot T junction) is listed too; the matcher does not join
those.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import shapely

from geo.network import Segment
from geo.projection import LocalProjection


@dataclass(frozen=True, slots=True)
class Gap:
    """Two dead-end nodes ``distance_m`` apart, and a segment ending at each."""

    node_a: str
    node_b: str
    distance_m: float
    segment_a: str
    segment_b: str


def dead_end_gaps(segments: Sequence[Segment], within_m: float) -> list[Gap]:
    """Pairs of dead ends (nodes with one neighbouring node) at most ``within_m`` apart
    and not already joined by a segment, nearest first."""
    if within_m <= 0 or not segments:
        return []
    ends = _DeadEnds(segments)
    dead = ends.nodes
    if len(dead) < 2:
        return []
    points = ends.points
    left, right = shapely.STRtree(points).query(points, predicate="dwithin",
                                                 distance=within_m)
    out: list[Gap] = []
    for i, j in zip(left.tolist(), right.tolist(), strict=True):
        a, b = dead[i], dead[j]
        if i < j and b not in ends.neighbours[a]:
            d = float(shapely.distance(points[i], points[j]))
            out.append(Gap(a, b, d, ends.where[a][1], ends.where[b][1]))
    out.sort(key=lambda g: g.distance_m)
    return out


_AT_END_M = 1.0  # a point on a segment this close to its end is at that end's node
_BY_ROAD = 3.0  # streets met within this x the distance by road are joined already
_GRADE_SEPARATED = frozenset({"motorway", "motorway_link", "trunk", "trunk_link"})


@dataclass(frozen=True, slots=True)
class Undershoot:
    """A dead end ``distance_m`` from a street it does not meet (a T junction the file
    lacks, most likely): the segment ending there, and the nearest such street."""

    node: str
    segment: str
    near: str
    distance_m: float


def undershoots(segments: Sequence[Segment], within_m: float) -> list[Undershoot]:
    """Dead ends at most ``within_m`` from a segment that meets neither them nor their
    one neighbouring node, nearest first; pairs of dead ends are ``dead_end_gaps``'.

    The matcher does not join these (it would have to cut the other street in two);
    an import lists them for the file's owners.
    """
    if within_m <= 0 or not segments:
        return []
    ends = _DeadEnds(segments)
    if not ends.nodes:
        return []
    lines = ends.lines(segments)
    hit_dead, hit_seg = shapely.STRtree(lines).query(ends.points, predicate="dwithin",
                                                     distance=within_m)
    best: dict[int, tuple[float, int]] = {}
    near_by_road: dict[str, set[str]] = {}
    for i, k in zip(hit_dead.tolist(), hit_seg.tolist(), strict=True):
        v, s = ends.nodes[i], segments[k]
        if s.road_class in _GRADE_SEPARATED:
            continue  # no T junctions on these: a bridge or tunnel over or under it
        if v not in near_by_road:
            near_by_road[v] = ends.neighbours[v] | ends.within_road(v, _BY_ROAD * within_m)
        if {s.start_node, s.end_node} & near_by_road[v]:
            continue  # it meets it, leaves its neighbour, or is a few metres on by road
        d = float(shapely.distance(ends.points[i], lines[k]))
        along = float(shapely.line_locate_point(lines[k], ends.points[i]))
        length = float(shapely.length(lines[k]))
        end = s.start_node if along <= _AT_END_M else s.end_node if (
            along >= length - _AT_END_M) else None
        if end in ends.dead_set:
            continue  # nearest at another dead end: a pair, which dead_end_gaps lists
        if d < best.get(i, (math.inf, -1))[0]:
            best[i] = (d, k)
    out = [Undershoot(ends.nodes[i], ends.where[ends.nodes[i]][1], segments[k].source_id, d)
           for i, (d, k) in best.items()]
    out.sort(key=lambda u: u.distance_m)
    return out


class _DeadEnds:
    """Nodes with one neighbouring node, in a local plane around them."""

    def __init__(self, segments: Sequence[Segment]) -> None:
        self.neighbours: dict[str, set[str]] = {}
        self.where: dict[str, tuple[tuple[float, float], str]] = {}
        self._adj: dict[str, list[tuple[str, float]]] = {}
        for s in segments:
            a, b = s.start_node, s.end_node
            self.neighbours.setdefault(a, set()).add(b)
            self.neighbours.setdefault(b, set()).add(a)
            self._adj.setdefault(a, []).append((b, s.length_m))
            self._adj.setdefault(b, []).append((a, s.length_m))
            self.where.setdefault(a, (s.coords[0], s.source_id))
            self.where.setdefault(b, (s.coords[-1], s.source_id))
        self.nodes = [v for v, near in self.neighbours.items() if len(near - {v}) == 1]
        self.dead_set = set(self.nodes)
        # Around the dead ends themselves (as the matcher's gap search always has).
        self.proj = LocalProjection.around(
            [self.where[v][0] for v in self.nodes] or [segments[0].coords[0]])
        xs, ys = self.proj.to_xy([self.where[v][0][0] for v in self.nodes],
                                 [self.where[v][0][1] for v in self.nodes])
        self.points = shapely.points(np.column_stack((xs, ys)))

    def within_road(self, node: str, metres: float) -> set[str]:
        """Nodes at most ``metres`` from ``node`` along the streets (either way)."""
        best = {node: 0.0}
        heap = [(0.0, node)]
        while heap:
            d, n = heapq.heappop(heap)
            if d > best.get(n, math.inf):
                continue
            for m, length in self._adj.get(n, ()):
                nd = d + length
                if nd <= metres and nd < best.get(m, math.inf):
                    best[m] = nd
                    heapq.heappush(heap, (nd, m))
        return set(best)

    def lines(self, segments: Sequence[Segment]) -> npt.NDArray[np.object_]:
        coords = [c for s in segments for c in s.coords]
        xs, ys = self.proj.to_xy([c[0] for c in coords], [c[1] for c in coords])
        index = np.repeat(np.arange(len(segments)), [len(s.coords) for s in segments])
        lines: npt.NDArray[np.object_] = shapely.linestrings(np.column_stack((xs, ys)),
                                                             indices=index)
        return lines
