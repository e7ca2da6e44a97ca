"""How much of the simulated plows' work the shortest way between true positions finds.

The coverage benchmark's sparse rows (30 s, 60 s) fall short of their recall targets
for both engines, even with exact positions. This measures why, with no matcher at
all: an oracle that knows, at every ping, the exact block, direction and offset the
plow was at (the simulator records them) and joins consecutive pings by the shortest
legal route, as every HMM map matcher's transition does (FMM, Meili, OSRM and
plowshare's alike), one-ways only the right way. Its blade changes are put by the
same rule as both engines' (``geo.emit.blade_switch``), and its routes go through
plowshare's own coverage book.

Whatever the oracle misses, the plow drove between two pings by a longer way than the
shortest: a loop round a block and back, into a dead end and out, round by a parallel
street. A matcher that joined the true states by the shortest way would miss the same;
one that does better either takes some longer routes (plowshare's speed x time cue can)
or is credited by luck. The share of steps whose true drive was much longer than the
oracle's route says how often the shortest way is not what was driven.

The shortest way to a node often turns round on the crossing just passed, which the
simulated plows never do (they turn round only at dead ends); ``--round`` joins the
pings by the shortest legal way that does not (``geo.routing.EdgeSearch``), a ceiling
for a matcher whose routes go round the block instead.

    .venv/bin/python -m bench.route_ceiling            # prints a markdown table
    .venv/bin/python -m bench.route_ceiling --round    # no turning round at a crossing
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise

import shapely

from app.sim_offline import simulate_fleet
from app.streets.load import load_segments
from bench.coverage_rows import MIN_FRACTION, NETWORKS, Tally, score, shared_data
from geo.cluster import Seed
from geo.coverage import CoverageBook
from geo.emit import Cleared, traversals
from geo.graph import StreetGraph
from geo.match import MatchConfig, Matcher, Ping
from geo.simulate import SimFix
from geo.transition import ROUND, ROUTED, SAME, Step
from geo.truth import simulated_truth

LONGER_M = 50.0  # a true drive this much longer than the oracle's route took another way


@dataclass(slots=True)
class Ceiling:
    tally: Tally = field(default_factory=Tally)
    steps: int = 0
    longer: int = 0  # steps whose true drive was LONGER_M longer than the oracle's route


class Oracle:
    """Exact states at the pings, joined by the shortest legal route; with ``round_``,
    by the shortest one that does not turn round at a crossing (``EdgeSearch``)."""

    def __init__(self, matcher: Matcher, round_: bool = False) -> None:
        self.m = matcher
        self.round = round_
        net = matcher.net
        seg_of = {s.source_id: i for i, s in enumerate(matcher.segments)}
        self.edge: dict[tuple[str, bool], int] = {}
        for sid, i in seg_of.items():
            for e in net.edges_of_seg[i]:
                if not net.wrong_way[e]:
                    self.edge[(sid, net.forward[e])] = e
        self.seg_of = seg_of

    def step(self, f: SimFix) -> Step:
        m = self.m
        e = self.edge[(f.source_id, f.forward)]
        (x,), (y,) = m.proj.to_xy([f.lon], [f.lat])
        line = m.index.lines[self.seg_of[f.source_id]]
        along = float(shapely.line_locate_point(line, shapely.Point(x, y)))
        off = along if m.net.forward[e] else m.net.length[e] - along
        ping = Ping("oracle", f.time.timestamp(), f.lon, f.lat, f.speed_mps, f.heading_deg,
                    1.0, f.plow)
        s = Step(Seed.at(ping, x, y), 1.0, ([e], [off], [0.0]))
        s.chosen = 0
        return s

    def join(self, a: Step, b: Step) -> float:
        """Make ``b``'s move from ``a`` the shortest one; returns its metres."""
        net = self.m.net
        ea, oa, eb, ob = a.edges[0], a.offs[0], b.edges[0], b.offs[0]
        if ea == eb and ob >= oa:
            b.kind, b.dist = [SAME], [ob - oa]
            return ob - oa
        bound = self.m.config.max_speed_mps * (b.t - a.t_leave)
        kind, hit = ROUND, (net.edge_search(ea).reach(eb, bound) if self.round else None)
        if hit is None:
            # (A simulated plow turns round where the rest of a crossing leads out of
            # the part of the network it keeps to: no round route there.)
            kind, hit = ROUTED, net.search(net.to[ea]).reach(net.frm[eb], bound)
        if hit is None:
            raise RuntimeError(f"no route between two fixes {b.t - a.t:.0f} s apart")
        ln = net.length[ea] - oa + hit[1] + ob
        b.kind, b.dist = [kind], [ln]
        return ln


def driven_metres(fixes: Sequence[SimFix]) -> list[float]:
    """Metres truly driven up to each fix of a dense drive (each fix's speed to the next)."""
    run_m = [0.0]
    for f, g in pairwise(fixes):
        run_m.append(run_m[-1] + f.speed_mps * (g.time - f.time).total_seconds())
    return run_m


def run(name: str, seed: int, intervals: Sequence[int], vehicles: int, duration_s: float,
        straight: float = 1.0, round_: bool = False) -> dict[int, Ceiling]:
    segments = load_segments(shared_data() / "osm" / NETWORKS[name])
    graph = StreetGraph(segments)
    dense, _ = simulate_fleet(graph, vehicles=vehicles, duration_s=duration_s, interval_s=1.0,
                              seed=seed, straight=straight)
    truth = simulated_truth(graph, dense, min_fraction=MIN_FRACTION)
    # Legal routes only: the matcher's routing also lets a one-way be driven backwards
    # at a penalty (a map can be wrong), and crosses short gaps between dead ends,
    # which no plow here did and FMM cannot do.
    legal = MatchConfig(hidden_wrong_way_m=math.inf, map_gap_m=0.0)
    oracle = Oracle(Matcher(segments, legal), round_)
    out: dict[int, Ceiling] = {}
    for k in intervals:
        ceiling = out[k] = Ceiling()
        book = CoverageBook(segments, MIN_FRACTION)
        for v, fixes in dense.items():
            run_m = driven_metres(fixes)
            steps = [oracle.step(f) for f in fixes[::k]]
            cleared = Cleared()
            for i, (a, b) in enumerate(pairwise(steps)):
                ln = oracle.join(a, b)
                ceiling.steps += 1
                if run_m[(i + 1) * k] - run_m[i * k] > ln + LONGER_M:
                    ceiling.longer += 1
                book.add(traversals(oracle.m, v, a, b, cleared))
        covered = {sid for sid, c in book.result().items() if c.covered}
        ceiling.tally = score(covered, truth, 0, 0.0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=2, help="fleets per network (as bench.coverage)")
    ap.add_argument("--vehicles", type=int, default=6)
    ap.add_argument("--duration", type=float, default=7200.0, help="seconds")
    ap.add_argument("--intervals", type=int, nargs="*", default=[5, 15, 30, 60])
    ap.add_argument("--straight", type=float, default=1.0,
                    help="simulated plows' weight for straight on (geo.simulate.drive)")
    ap.add_argument("--round", action="store_true",
                    help="join by the shortest legal way that turns round only at dead "
                         "ends, as the simulated plows do (geo.routing.EdgeSearch)")
    a = ap.parse_args()
    pooled = {k: Ceiling() for k in a.intervals}
    each: dict[tuple[str, int], Ceiling] = {}
    for name in NETWORKS:
        for seed in range(1, a.seeds + 1):
            fleet = run(name, seed, a.intervals, a.vehicles, a.duration, a.straight, a.round)
            for k, c in fleet.items():
                for into in (pooled[k], each.setdefault((name, k), Ceiling())):
                    into.tally.add(c.tally)
                    into.steps += c.steps
                    into.longer += c.longer
    print("| pings | oracle P | oracle R | steps driven the long way |")
    print("|---|---:|---:|---:|")
    for k, c in pooled.items():
        print(f"| {k} s, exact | {c.tally.precision:.4f} | {c.tally.recall:.4f} | "
              f"{_share(c)} |")
    print("\n| network | interval | oracle P | oracle R | steps driven the long way |")
    print("|---|---|---:|---:|---:|")
    for (name, k), c in each.items():
        if k >= 30:
            print(f"| {name} | {k} s | {c.tally.precision:.4f} | {c.tally.recall:.4f} | "
                  f"{_share(c)} |")


def _share(c: Ceiling) -> str:
    return f"{c.longer / c.steps:.1%}" if c.steps else "n/a"


if __name__ == "__main__":
    main()
