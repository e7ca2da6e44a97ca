"""Dead ends a few metres apart: where a street file most likely breaks one road.

A town's centreline file or OSM sometimes stops a road short for a few metres (a
digitising gap, a missing link, a yard between two service roads). Vehicles drive
across; the matcher joins such dead ends (``geo.routing``), and an import lists them
so the file's owners can check them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
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
    neighbours: dict[str, set[str]] = {}
    where: dict[str, tuple[tuple[float, float], str]] = {}
    for s in segments:
        a, b = s.start_node, s.end_node
        neighbours.setdefault(a, set()).add(b)
        neighbours.setdefault(b, set()).add(a)
        where.setdefault(a, (s.coords[0], s.source_id))
        where.setdefault(b, (s.coords[-1], s.source_id))
    dead = [v for v, near in neighbours.items() if len(near - {v}) == 1]
    if len(dead) < 2:
        return []
    proj = LocalProjection.around(where[v][0] for v in dead)
    xs, ys = proj.to_xy([where[v][0][0] for v in dead], [where[v][0][1] for v in dead])
    points = shapely.points(np.column_stack((xs, ys)))
    left, right = shapely.STRtree(points).query(points, predicate="dwithin",
                                                 distance=within_m)
    out: list[Gap] = []
    for i, j in zip(left.tolist(), right.tolist(), strict=True):
        a, b = dead[i], dead[j]
        if i < j and b not in neighbours[a]:
            d = float(shapely.distance(points[i], points[j]))
            out.append(Gap(a, b, d, where[a][1], where[b][1]))
    out.sort(key=lambda g: g.distance_m)
    return out
