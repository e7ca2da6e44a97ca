"""Simulated plow trucks: drive the directed street graph and emit GPS fixes.

Used for demos (published live, one fix per interval, from ``iter_drive``) and as
ground truth for tests of map matching and coverage: every fix records the block and
direction the truck was really on. All randomness comes from the caller's
``random.Random`` so a seed reproduces a run exactly.
"""

from __future__ import annotations

import math
import random
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from itertools import islice

from pyproj import Geod

from geo.graph import Edge, StreetGraph

_GEOD = Geod(ellps="WGS84")

# Plowing speeds: a blade down on a residential street crawls, on arterials it keeps
# up with traffic. Per-block variation is applied on top, clamped to this range.
MIN_SPEED_MPS = 8.0
MAX_SPEED_MPS = 12.0
_CLASS_SPEED_MPS = {
    "motorway": 12.0, "trunk": 12.0, "primary": 11.0, "secondary": 10.5, "tertiary": 10.0,
    "unclassified": 9.0, "residential": 9.0, "road": 9.0, "living_street": 8.0, "service": 8.0,
}
# Chance of taking an already-plowed block although an unplowed one is available; a
# real route is not a perfect coverage tour, and it keeps the walk from looking scripted.
_DETOUR_P = 0.15
STRAIGHT_DEG = 45.0  # a next block turning off the current heading by less is straight on


@dataclass(frozen=True, slots=True)
class SimFix:
    time: datetime  # UTC
    lon: float
    lat: float
    heading_deg: float  # direction of travel, 0 = north, clockwise
    speed_mps: float
    source_id: str  # segment the truck is on
    forward: bool  # driving along the segment's coords (always True on one-ways)
    plow: bool  # blade down: first pass over this block in this direction


def class_speed_mps(road_class: str) -> float:
    base = road_class.removesuffix("_link")
    return _CLASS_SPEED_MPS.get(base, 9.0)


class _EdgeShape:
    """Cumulative geodesic distances and azimuths of an edge's vertex pairs."""

    __slots__ = ("azimuths", "cum", "lats", "length", "lons")

    def __init__(self, edge: Edge) -> None:
        self.lons = [c[0] for c in edge.coords]
        self.lats = [c[1] for c in edge.coords]
        az, _, dist = _GEOD.inv(self.lons[:-1], self.lats[:-1], self.lons[1:], self.lats[1:])
        self.azimuths: list[float] = list(az)
        self.cum = [0.0]
        for d in dist:
            self.cum.append(self.cum[-1] + d)
        self.length = self.cum[-1]

    def first_azimuth(self) -> float:
        """Heading where the edge starts (past repeated vertices)."""
        return next((a for a, c0, c1 in zip(self.azimuths, self.cum, self.cum[1:],
                                              strict=False) if c1 > c0), 0.0)

    def last_azimuth(self) -> float:
        """Heading where the edge ends, in its driving direction."""
        pairs = zip(self.azimuths, self.cum, self.cum[1:], strict=False)
        return next((a for a, c0, c1 in reversed(list(pairs)) if c1 > c0), 0.0)

    def at(self, offset_m: float) -> tuple[float, float, float]:
        """(lon, lat, heading) ``offset_m`` along the edge, interpolated geodesically."""
        last = len(self.azimuths) - 1
        i = min(max(bisect_right(self.cum, offset_m) - 1, 0), last)
        # Repeated vertices give zero-length pairs whose azimuth means nothing.
        while i < last and self.cum[i + 1] - self.cum[i] <= 0.0:
            i += 1
        while i > 0 and self.cum[i + 1] - self.cum[i] <= 0.0:
            i -= 1
        rest = min(max(offset_m - self.cum[i], 0.0), self.cum[i + 1] - self.cum[i])
        lon, lat, back = _GEOD.fwd(self.lons[i], self.lats[i], self.azimuths[i], rest)
        return float(lon), float(lat), (float(back) + 180.0) % 360.0


class _Truck:
    """Position and route choice of one vehicle inside one strongly connected component."""

    def __init__(
        self, graph: StreetGraph, rng: random.Random, start: Edge | None,
        speed_mps: float | None, straight: float = 1.0,
    ) -> None:
        components = graph.strongly_connected_components()
        if start is None:
            if not components or len(components[0]) < 2:
                raise ValueError("street graph has no drivable loop to simulate on")
            self.area = components[0]
            start = rng.choice([e for e in graph.edges if self._inside(e)])
        else:
            self.area = next(c for c in components if start.from_node in c)
            if start.to_node not in self.area:
                # Past this edge the truck could never get back: no endless drive.
                raise ValueError(f"start edge {start.source_id} leads out of its component")
        self.graph, self.rng, self.fixed_speed = graph, rng, speed_mps
        self.straight = straight
        self.plowed: set[int] = set()
        self.shapes: dict[int, _EdgeShape] = {}
        self._enter(start)

    def _inside(self, edge: Edge) -> bool:
        return edge.from_node in self.area and edge.to_node in self.area

    def _enter(self, edge: Edge) -> None:
        self.edge = edge
        self.offset = 0.0
        self.plow = edge.index not in self.plowed
        self.plowed.add(edge.index)
        self.shape = self._shape(edge)
        if self.fixed_speed is not None:
            self.speed = self.fixed_speed
        else:
            base = class_speed_mps(edge.segment.road_class) * self.rng.uniform(0.9, 1.1)
            self.speed = min(max(base, MIN_SPEED_MPS), MAX_SPEED_MPS)

    def _next_edge(self) -> Edge:
        options = [e for e in self.graph.edges_from(self.edge.to_node) if self._inside(e)]
        ahead = [e for e in options
                 if not (e.source_id == self.edge.source_id and e.forward != self.edge.forward)]
        if not ahead:
            return options[0]  # dead end: the U-turn is the only way on
        fresh = [e for e in ahead if e.index not in self.plowed]
        pool = fresh if fresh and self.rng.random() >= _DETOUR_P else ahead
        if self.straight == 1.0:
            return self.rng.choice(pool)
        weights = [self.straight if self._turn_deg(e) < STRAIGHT_DEG else 1.0 for e in pool]
        return self.rng.choices(pool, weights)[0]

    def _shape(self, edge: Edge) -> _EdgeShape:
        shape = self.shapes.get(edge.index)
        if shape is None:
            shape = self.shapes[edge.index] = _EdgeShape(edge)
        return shape

    def _turn_deg(self, edge: Edge) -> float:
        """How far the way onto ``edge`` turns off the end of the current block."""
        d = self._shape(edge).first_azimuth() - self.shape.last_azimuth()
        return abs((d + 180.0) % 360.0 - 180.0)

    def advance(self, dt: float) -> None:
        while True:
            to_end = (self.shape.length - self.offset) / self.speed
            if dt < to_end:
                self.offset += dt * self.speed
                return
            dt -= to_end
            self._enter(self._next_edge())

    def fix(self, when: datetime) -> SimFix:
        lon, lat, heading = self.shape.at(self.offset)
        return SimFix(when, lon, lat, heading, self.speed, self.edge.source_id,
                      self.edge.forward, self.plow)


def iter_drive(
    graph: StreetGraph,
    rng: random.Random,
    *,
    start_edge: Edge | None = None,
    interval_s: float,
    speed_mps: float | None = None,
    start_time: datetime,
    straight: float = 1.0,
) -> Iterator[SimFix]:
    """Endless fixes ``interval_s`` apart; pull one per interval to publish in real time.

    The truck drives whole blocks, obeys one-ways, U-turns only at dead ends and
    prefers blocks it has not plowed yet. It stays inside the strongly connected part
    of the network it starts in, so it never gets stuck at the edge of an extract.
    Without ``speed_mps`` the speed depends on the road class (8-12 m/s).
    ``straight`` weighs a block straight on against each one that turns (more than
    45 degrees) when it picks the next; 1 picks among them evenly (see
    ``bench/route_realism.py`` for how often real plows turn).
    """
    if interval_s <= 0:
        raise ValueError("interval_s must be positive")
    if speed_mps is not None and speed_mps <= 0:
        raise ValueError("speed_mps must be positive")
    if not 0 < straight < math.inf:
        raise ValueError("straight must be positive and finite")
    if start_time.tzinfo is None:
        # A naive time would silently be taken as server-local time.
        raise ValueError("start_time must be timezone-aware")
    truck = _Truck(graph, rng, start_edge, speed_mps, straight)
    # Checked above, generated below: bad arguments fail at the call, not at first next().
    return _fixes(truck, start_time.astimezone(UTC), interval_s)


def _fixes(truck: _Truck, start: datetime, interval_s: float) -> Iterator[SimFix]:
    k = 0
    while True:
        # Multiply rather than accumulate, so fix times never drift off the grid.
        yield truck.fix(start + timedelta(seconds=k * interval_s))
        truck.advance(interval_s)
        k += 1


def drive(
    graph: StreetGraph,
    rng: random.Random,
    *,
    start_edge: Edge | None = None,
    duration_s: float,
    interval_s: float,
    speed_mps: float | None = None,
    start_time: datetime,
    straight: float = 1.0,
) -> list[SimFix]:
    """Fixes at 0, interval_s, ... up to and including ``duration_s``."""
    if duration_s < 0:
        raise ValueError("duration_s must be >= 0")
    count = math.floor(duration_s / interval_s + 1e-9) + 1
    fixes = iter_drive(graph, rng, start_edge=start_edge, interval_s=interval_s,
                       speed_mps=speed_mps, start_time=start_time, straight=straight)
    return list(islice(fixes, count))


def add_noise(fixes: Sequence[SimFix], rng: random.Random, sigma_m: float) -> list[SimFix]:
    """Copies with positions jittered by independent Gaussian east/north errors (metres)."""
    if sigma_m < 0:
        raise ValueError("sigma_m must be >= 0")
    if not fixes or sigma_m == 0:
        return list(fixes)
    east = [rng.gauss(0.0, sigma_m) for _ in fixes]
    north = [rng.gauss(0.0, sigma_m) for _ in fixes]
    azimuths = [math.degrees(math.atan2(e, n)) for e, n in zip(east, north, strict=True)]
    dists = [math.hypot(e, n) for e, n in zip(east, north, strict=True)]
    lons, lats, _ = _GEOD.fwd([f.lon for f in fixes], [f.lat for f in fixes], azimuths, dists)
    return [replace(f, lon=float(x), lat=float(y)) for f, x, y in zip(fixes, lons, lats,
                                                                      strict=True)]
