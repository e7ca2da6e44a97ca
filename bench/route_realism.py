"""Do the simulated plows drive like real ones? Turns measured on real plow data.

The coverage benchmark's sparse rows (30 s, 60 s between pings) are only as hard as
the simulated routes: a plow that turns at every block leaves many ways between two
pings, one that drives long straight runs leaves one. ``geo.simulate`` picks among the
blocks ahead at random (preferring ones it has not plowed), so it could be harder, or
easier, than a real plow. This measures the same two figures on real plows and on the
simulated fleets of ``bench/coverage.py``:

- **Turn share**: of the moves from one block onto a *different*, adjacent block, the
  share that turn by more than 45 degrees. Real: the City of Syracuse's service
  events (``plow/syracuse``); two events of one snow route at most 60 s apart on two
  blocks that meet are one plow's move from the first onto the second. Two such
  events on blocks that do not meet are *unclear* (a block between them was not on
  the route, or the events came out of order); the table also gives the share if
  each unclear pair were one turning move (not a bound: a pair may hide several
  moves). Simulated: the block sequence of each dense 1 Hz drive, where two blocks
  in a row that do not meet (a block shorter than a second's drive between them)
  are unclear too. U-turns on one block are left out of both.
- **Turns per km**: heading changes of more than 60 degrees along the path
  (``turns_per_km``). Real: the Drammen plows' pings as the feed gave them (mostly
  1-58 s apart; longer pauses end a path); the simulated drives sampled with the
  same gaps (drawn at random from Drammen's, pauses aside), since sparser
  positions cut corners and hide turns. Drammen is 4
  vehicles and about 40 km: a small sample.

    .venv/bin/python -m bench.route_realism          # prints a markdown section
"""

from __future__ import annotations

import argparse
import csv
import gzip
import math
import random
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from itertools import pairwise
from statistics import median

import shapely

from app.sim_offline import simulate_fleet
from app.streets.load import load_segments
from bench.coverage_rows import NETWORKS, shared_data
from geo.graph import StreetGraph
from geo.network import Coord, Segment
from geo.projection import LocalProjection

TURN_DEG = 45.0  # a move onto the next block turning more than this is a turn
HEADING_M = 20.0  # direction of a block end: over this much of it
SAME_PLOW_S = 60.0  # two service events of a route this close are one plow's move
STEP_M = 20.0  # the path is resampled every STEP_M metres ...
WINDOW = 3  # ... and a heading is the mean over WINDOW steps either side
PATH_TURN_DEG = 60.0
GAP_S = 70.0  # a longer silence in a feed ends the path


class Turns:
    """Turn angles of block-to-block moves, on one network's local plane."""

    def __init__(self, segments: Sequence[Segment]) -> None:
        self.proj = LocalProjection.around(c for s in segments for c in s.coords)
        self.turns = self.moves = self.unclear = 0

    def _line(self, coords: Sequence[Coord]) -> shapely.LineString:
        xs, ys = self.proj.to_xy([c[0] for c in coords], [c[1] for c in coords])
        return shapely.LineString(list(zip(xs.tolist(), ys.tolist(), strict=True)))

    def add(self, into: Sequence[Coord], out: Sequence[Coord]) -> None:
        """A move along ``into`` (driving order, ending where ``out`` starts) onto ``out``."""
        a, b = self._line(into), self._line(out)
        if a.length <= 0 or b.length <= 0:
            return
        p0 = a.interpolate(max(a.length - HEADING_M, 0.0))
        p1, p2 = a.interpolate(a.length), b.interpolate(0.0)
        p3 = b.interpolate(min(HEADING_M, b.length))
        h1 = math.atan2(p1.y - p0.y, p1.x - p0.x)
        h2 = math.atan2(p3.y - p2.y, p3.x - p2.x)
        self.moves += 1
        if _turned_deg(h1, h2) > TURN_DEG:
            self.turns += 1


def syracuse_turns() -> tuple[Turns, int]:
    """Syracuse's plows: their moves, and the service events read."""
    root = shared_data() / "plow" / "syracuse"
    segments = load_segments(root / "snow_route_segments.geojson.gz",
                             id_property="snowroutesegmentid")
    graph = StreetGraph(segments)
    by_id = {s.source_id: s for s in segments}
    out = Turns(segments)
    routes: dict[str, list[tuple[datetime, str]]] = defaultdict(list)
    with gzip.open(root / "service_events.csv.gz", "rt", newline="") as fh:
        rows = list(csv.DictReader(fh))
    for r in rows:
        if r["snowroutesegmentid"] in by_id:
            t = datetime.fromisoformat(r["serviced_at"].replace("Z", "")[:26])
            routes[r["snowrouteid"]].append((t, r["snowroutesegmentid"]))
    for events in routes.values():
        events.sort()
        for (t1, a), (t2, b) in pairwise(events):
            if a == b or (t2 - t1).total_seconds() > SAME_PLOW_S:
                continue
            into = next((e for e in graph.edges_of(a)
                         if any(x.source_id == b for x in graph.edges_from(e.to_node))), None)
            if into is None:
                out.unclear += 1  # blocks that do not meet
                continue
            onto = next(x for x in graph.edges_from(into.to_node) if x.source_id == b)
            out.add(into.coords, onto.coords)
    return out, len(rows)


def simulated(name: str, seed: int, vehicles: int, duration_s: float, gaps: Sequence[float],
              straight: float = 1.0) -> tuple[Turns, float, int]:
    """Moves, path km and path turns of ``bench/coverage.py``'s fleet ``seed``, the
    path sampled with gaps drawn from ``gaps`` (seconds)."""
    segments = load_segments(shared_data() / "osm" / NETWORKS[name])
    graph = StreetGraph(segments)
    dense, _ = simulate_fleet(graph, vehicles=vehicles, duration_s=duration_s,
                              interval_s=1.0, seed=seed, straight=straight)
    out = Turns(segments)
    km, n = 0.0, 0
    for fixes in dense.values():
        blocks = [(fixes[0].source_id, fixes[0].forward)]
        for f in fixes[1:]:
            if (f.source_id, f.forward) != blocks[-1]:
                blocks.append((f.source_id, f.forward))
        edge = {(e.source_id, e.forward): e for b in blocks for e in graph.edges_of(b[0])}
        for a, b in pairwise(blocks):
            if a[0] == b[0]:
                continue
            if edge[a].to_node != edge[b].from_node:
                out.unclear += 1
                continue
            out.add(edge[a].coords, edge[b].coords)
        rng = random.Random(f"gaps:{name}:{seed}:{len(fixes)}")
        sampled, k = [], 0
        while k < len(fixes):
            sampled.append(fixes[k])
            k += max(1, round(rng.choice(gaps)))
        t0 = fixes[0].time.timestamp()
        km_v, m = turns_per_km(out.proj, [(f.lon, f.lat, f.time.timestamp() - t0)
                                          for f in sampled])
        km, n = km + km_v, n + m
    return out, km, n


def turns_per_km(proj: LocalProjection, fixes: Sequence[tuple[float, float, float]]
                 ) -> tuple[float, int]:
    """(km, turns) of a time-ordered (lon, lat, t) path; see the module docstring."""
    if not fixes:
        return 0.0, 0
    xs, ys = proj.to_xy([f[0] for f in fixes], [f[1] for f in fixes])
    pieces: list[list[tuple[float, float]]] = [[]]
    for k, (x, y) in enumerate(zip(xs.tolist(), ys.tolist(), strict=True)):
        if k and fixes[k][2] - fixes[k - 1][2] > GAP_S:
            pieces.append([])
        pieces[-1].append((x, y))
    km, turns = 0.0, 0
    for piece in pieces:
        if len(piece) < 2:
            continue
        line = shapely.LineString(piece)
        steps = int(line.length // STEP_M)
        pts = [line.interpolate(i * STEP_M) for i in range(steps + 1)]
        km += steps * STEP_M / 1000.0
        heads = [math.atan2(b.y - a.y, b.x - a.x) for a, b in pairwise(pts)]
        last = -math.inf
        for i in range(WINDOW, len(heads) - WINDOW + 1):
            before, after = _mean_angle(heads[i - WINDOW:i]), _mean_angle(heads[i:i + WINDOW])
            change = _turned_deg(before, after)
            if change > PATH_TURN_DEG and i - last > 2 * WINDOW:
                turns, last = turns + 1, i
    return km, turns


def _turned_deg(h1: float, h2: float) -> float:
    """Degrees between two headings given in radians (0-180)."""
    return abs((math.degrees(h2 - h1) + 180.0) % 360.0 - 180.0)


def _mean_angle(angles: Iterable[float]) -> float:
    a = list(angles)
    return math.atan2(sum(map(math.sin, a)), sum(map(math.cos, a)))


def drammen() -> tuple[float, int, list[float], int]:
    """(km, turns, seconds between pings, vehicles) of the Drammen plows."""
    by: dict[str, list[tuple[float, float, float]]] = defaultdict(list)
    path = shared_data() / "plow" / "drammen" / "pings_2023-02-13.csv"
    with path.open(newline="") as fh:
        for r in csv.DictReader(fh):
            by[r["vehicle"]].append((float(r["lon"]), float(r["lat"]), float(r["epoch_s"])))
    proj = LocalProjection.around((f[0], f[1]) for fs in by.values() for f in fs)
    km, n, gaps = 0.0, 0, []
    for fixes in by.values():
        fixes.sort(key=lambda f: f[2])
        gaps += [b[2] - a[2] for a, b in pairwise(fixes)]
        k, m = turns_per_km(proj, fixes)
        km, n = km + k, n + m
    return km, n, gaps, len(by)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=2, help="fleets per network (as bench.coverage)")
    ap.add_argument("--vehicles", type=int, default=6)
    ap.add_argument("--duration", type=float, default=7200.0, help="seconds")
    ap.add_argument("--straight", type=float, default=1.0,
                    help="simulated plows' weight for straight on (geo.simulate.drive)")
    a = ap.parse_args()
    syr, events = syracuse_turns()
    d_km, d_turns, gaps, d_n = drammen()
    driving = [g for g in gaps if g <= GAP_S]  # not the pauses between trips
    print("| plows | moves (unclear) | turn share (unclear as turns) | path km | turns per km |")
    print("|---|---:|---:|---:|---:|")
    print(f"| real: Syracuse service events ({events:,}) | {syr.moves:,} ({syr.unclear:,}) | "
          f"{_shares(syr.turns, syr.moves, syr.unclear)} | | |")
    print(f"| real: Drammen pings ({d_n} vehicles, median {median(gaps):.0f} s apart) | | | "
          f"{d_km:.0f} | {d_turns / d_km:.2f} |")
    for name in NETWORKS:
        turns = moves = unclear = path_turns = 0
        km = 0.0
        for seed in range(1, a.seeds + 1):
            t, k, m = simulated(name, seed, a.vehicles, a.duration, driving, a.straight)
            turns, moves, unclear = turns + t.turns, moves + t.moves, unclear + t.unclear
            km, path_turns = km + k, path_turns + m
        print(f"| simulated: {name} | {moves:,} ({unclear:,}) | "
              f"{_shares(turns, moves, unclear)} | {km:.0f} | {path_turns / km:.2f} |")


def _shares(turns: int, moves: int, unclear: int) -> str:
    return f"{turns / moves:.2f} ({(turns + unclear) / (moves + unclear):.2f})"


if __name__ == "__main__":
    main()
