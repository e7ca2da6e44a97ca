"""Helpers for the matcher and coverage tests: real networks, scripted drives on them.

Named test_match_* so it sits with the tests it serves; it holds no tests itself.
A scripted drive is a list of directed edges driven at a steady speed, sampled every
``interval_s`` and jittered with seeded Gaussian noise, so each scenario is exactly
reproducible and its truth is known by construction.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from geo_shared_data import shared_data
from pyproj import Geod

from app.streets.load import load_segments
from geo.coverage import CoverageBook, SegmentCoverage
from geo.graph import Edge, StreetGraph
from geo.match import Matcher, Ping
from geo.network import Segment

GEOD = Geod(ellps="WGS84")
T0 = 1_736_915_400.0  # 2025-01-15 04:30 UTC


@dataclass(frozen=True)
class Net:
    segments: list[Segment]
    graph: StreetGraph
    matcher: Matcher

    def edge(self, source_id: str, forward: bool = True) -> Edge:
        return next(e for e in self.graph.edges_of(source_id) if e.forward is forward)

    def into(self, node: str, source_id: str) -> Edge:
        """The edge of ``source_id`` that arrives at ``node``."""
        return next(e for e in self.graph.edges_to(node) if e.source_id == source_id)

    def out_of(self, node: str, source_id: str) -> Edge:
        """The edge of ``source_id`` that leaves ``node``."""
        return next(e for e in self.graph.edges_from(node) if e.source_id == source_id)

    def segment(self, source_id: str) -> Segment:
        return next(s for s in self.segments if s.source_id == source_id)


def _net(*parts: str) -> Net:
    segments = load_segments(shared_data(*parts))
    return Net(segments, StreetGraph(segments), Matcher(segments))


@lru_cache(maxsize=1)
def krems() -> Net:
    return _net("osm", "krems.osm.gz")


@lru_cache(maxsize=1)
def baltimore() -> Net:
    return _net("osm", "baltimore.osm.pbf")


@lru_cache(maxsize=1)
def andorra() -> Net:
    return _net("osm", "andorra.osm.pbf")


def bearing_deg(a: tuple[float, float], b: tuple[float, float]) -> float:
    az, _, _ = GEOD.inv(a[0], a[1], b[0], b[1])
    return float(az) % 360.0


def turn_deg(a: Edge, b: Edge) -> float:
    """Absolute change of direction from the end of edge a to the start of edge b."""
    d = bearing_deg(b.coords[0], b.coords[1]) - bearing_deg(a.coords[-2], a.coords[-1])
    return abs((d + 180.0) % 360.0 - 180.0)


def straight_on(net: Net, first: Edge, blocks: int) -> list[Edge]:
    """``first`` and up to ``blocks - 1`` edges that continue it most nearly straight."""
    path = [first]
    while len(path) < blocks:
        here = path[-1]
        options = [e for e in net.graph.edges_from(here.to_node)
                   if e.source_id != here.source_id]
        if not options:
            break
        path.append(min(options, key=lambda e: turn_deg(here, e)))
    return path


def straight_into(net: Net, last: Edge, blocks: int) -> list[Edge]:
    """Up to ``blocks - 1`` edges leading most nearly straight into ``last``, and it."""
    path = [last]
    while len(path) < blocks:
        here = path[0]
        options = [e for e in net.graph.edges_to(here.from_node)
                   if e.source_id != here.source_id]
        if not options:
            break
        path.insert(0, min(options, key=lambda e: turn_deg(e, here)))
    return path


@dataclass
class Drive:
    """Positions along a chain of edges, by distance from the start of the chain."""

    lons: list[float]
    lats: list[float]
    cum: list[float]
    azimuths: list[float]

    @classmethod
    def along(cls, edges: Sequence[Edge]) -> Drive:
        coords = list(edges[0].coords)
        for e in edges[1:]:
            coords.extend(e.coords[1:])
        return cls.through(coords)

    @classmethod
    def through(cls, coords: Sequence[tuple[float, float]]) -> Drive:
        """Straight from each (lon, lat) to the next, streets or not."""
        lons = [c[0] for c in coords]
        lats = [c[1] for c in coords]
        az, _, dist = GEOD.inv(lons[:-1], lats[:-1], lons[1:], lats[1:])
        cum = [0.0]
        for d in dist:
            cum.append(cum[-1] + float(d))
        return cls(lons, lats, cum, [float(a) for a in az])

    @property
    def length(self) -> float:
        return self.cum[-1]

    def at(self, d: float) -> tuple[float, float, float]:
        """(lon, lat, heading) ``d`` metres along the chain."""
        d = min(max(d, 0.0), self.length)
        i = 0
        while i < len(self.azimuths) - 1 and (self.cum[i + 1] < d
                                               or self.cum[i + 1] - self.cum[i] <= 0):
            i += 1
        lon, lat, _ = GEOD.fwd(self.lons[i], self.lats[i], self.azimuths[i], d - self.cum[i])
        return float(lon), float(lat), self.azimuths[i] % 360.0


def sample(
    drive: Drive, *, start_m: float = 0.0, stop_m: float | None = None, speed: float = 9.0,
    interval_s: float = 1.0, t0: float = T0, backwards: bool = False,
) -> list[tuple[float, float, float, float]]:
    """(t, lon, lat, heading) every ``interval_s`` from start_m towards stop_m.

    The last sample is at ``stop_m`` itself (the clock keeps its interval; the final
    stretch is driven at the same speed), so the drive's last block is driven whole.
    """
    stop = (0.0 if backwards else drive.length) if stop_m is None else stop_m
    total = abs(stop - start_m)
    out = []
    k = 0
    while True:
        d = min(k * interval_s * speed, total)
        pos = start_m - d if backwards else start_m + d
        lon, lat, head = drive.at(pos)
        if backwards:
            head = (head + 180.0) % 360.0
        out.append((t0 + d / speed, lon, lat, head))
        if d >= total:
            return out
        k += 1


def pings(
    samples: Sequence[tuple[float, float, float, float]], rng: random.Random, *,
    noise_m: float = 10.0, speed: float | None = 9.0, sensors: bool = True,
    plow: bool | None = None, vehicle: str = "plow-1",
) -> list[Ping]:
    """Noisy pings from exact samples (independent Gaussian east/north error)."""
    out = []
    for t, lon, lat, head in samples:
        east, north = rng.gauss(0.0, noise_m), rng.gauss(0.0, noise_m)
        az = math.degrees(math.atan2(east, north))
        nlon, nlat, _ = GEOD.fwd(lon, lat, az, math.hypot(east, north))
        out.append(Ping(vehicle, t, float(nlon), float(nlat),
                        speed_mps=speed if sensors else None,
                        heading_deg=head if sensors else None,
                        accuracy_m=noise_m if sensors else None, plow=plow))
    return out


def cover(net: Net, fixes: Sequence[Ping]) -> tuple[dict[str, SegmentCoverage], CoverageBook]:
    """Online path, one vehicle: every fix pushed one at a time, then flushed."""
    book = CoverageBook(net.segments)
    tracks = {}
    for p in fixes:
        track = tracks.get(p.vehicle)
        if track is None:
            track = tracks[p.vehicle] = net.matcher.track(p.vehicle)
        book.add(track.push(p))
    for track in tracks.values():
        book.add(track.flush())
    return book.result(), book


def serviced(result: dict[str, SegmentCoverage]) -> set[str]:
    return {sid for sid, c in result.items() if c.covered}
