"""Could the steps driven the long way be told from the pings? One detour node, exactly.

``bench.route_ceiling`` finds that a fifth of the simulated plows' 30 s steps (half of
the 60 s ones) were driven a longer way than the shortest: loops round a block, into a
dead end and out. A matcher could try routes through one detour node X (the shortest
way to X, then the shortest way on), which is how loops are usually proposed. This
asks, with every advantage: exact states at both pings and the *true* driven length
(what a perfect odometer would say), how many such steps have exactly one route of
that length through one node, and whether it is the one driven.

A route counts when its length is within the matcher's own tolerance of the speed x
time cue (``beta_m + beta_per_s * dt + 0.1 * length``) and it does not turn back at a
crossing (the simulated plows turn only at dead ends). Steps are sorted into: one such
route and it is the driven one; one and it is another; several; none.

    .venv/bin/python -m bench.route_loops --interval 30 --towns krems baltimore
"""

from __future__ import annotations

import argparse
import heapq
from collections import Counter
from collections.abc import Sequence
from itertools import pairwise

from app.sim_offline import simulate_fleet
from app.streets.load import load_segments
from bench.coverage_rows import NETWORKS, shared_data
from bench.route_ceiling import LONGER_M, Oracle, driven_metres
from geo.graph import StreetGraph
from geo.match import MatchConfig, Matcher
from geo.routing import RoutingNet

Tree = dict[int, tuple[float, int]]  # node -> (metres, edge it was reached by)


def tree(net: RoutingNet, source: int, bound: float, backwards: bool,
         into: Sequence[Sequence[int]]) -> Tree:
    """Shortest legal metres from ``source`` (to it, if ``backwards``), up to ``bound``."""
    best = {source: 0.0}
    done: Tree = {}
    heap = [(0.0, source, -1)]
    while heap:
        d, node, via = heapq.heappop(heap)
        if node in done:
            continue
        done[node] = (d, via)
        if d > bound:
            break
        for e in (into[node] if backwards else net.out[node]):
            if net.wrong_way[e]:
                continue
            nxt = net.frm[e] if backwards else net.to[e]
            nd = d + net.length[e]
            if nxt not in done and nd < best.get(nxt, float("inf")):
                best[nxt] = nd
                heapq.heappush(heap, (nd, nxt, e))
    return done


def walk(net: RoutingNet, t: Tree, node: int, backwards: bool) -> list[int]:
    """The edges from the tree's source to ``node`` (from ``node`` to it if backwards)."""
    edges = []
    while t[node][1] >= 0:
        e = t[node][1]
        edges.append(e)
        node = net.to[e] if backwards else net.frm[e]
    return edges if backwards else edges[::-1]


def via_routes(net: RoutingNet, into: Sequence[Sequence[int]], s: int, t: int,
               metres: float, tol: float) -> set[tuple[int, ...]]:
    """Distinct routes s -> X -> t (shortest legs) within ``tol`` of ``metres``."""
    fwd = tree(net, s, metres + tol, False, into)
    back = tree(net, t, metres + tol, True, into)
    out = set()
    for x, (d1, e_in) in fwd.items():
        hit = back.get(x)
        if hit is None or abs(d1 + hit[0] - metres) > tol:
            continue
        e_out = hit[1]
        if e_in >= 0 and e_out >= 0 and net.reverse[e_in] == e_out and not net.dead_end[e_in]:
            continue  # turned back at a crossing
        out.add(tuple(walk(net, fwd, x, False) + walk(net, back, x, True)))
    return out


def sort_steps(name: str, seed: int, interval: int, vehicles: int, duration_s: float
               ) -> Counter[str]:
    segments = load_segments(shared_data() / "osm" / NETWORKS[name])
    graph = StreetGraph(segments)
    cfg = MatchConfig(hidden_wrong_way_m=float("inf"), map_gap_m=0.0)  # legal routes only
    oracle = Oracle(Matcher(segments, cfg))
    net = oracle.m.net
    into: list[list[int]] = [[] for _ in range(net.node_count)]
    for e in range(net.edge_count):
        into[net.to[e]].append(e)
    dense, _ = simulate_fleet(graph, vehicles=vehicles, duration_s=duration_s, interval_s=1.0,
                              seed=seed)
    tally: Counter[str] = Counter()
    for fixes in dense.values():
        run_m = driven_metres(fixes)
        at = range(0, len(fixes), interval)
        steps = [oracle.step(fixes[i]) for i in at]
        for (i0, i1), (a, b) in zip(pairwise(at), pairwise(steps), strict=True):
            driven = run_m[i1] - run_m[i0]
            if driven <= oracle.join(a, b) + LONGER_M:
                continue
            tally["driven the long way"] += 1
            ea, eb = a.edges[0], b.edges[0]
            between = driven - (net.length[ea] - a.offs[0]) - b.offs[0]
            tol = cfg.beta_m + cfg.beta_per_s * interval + 0.1 * driven
            routes = via_routes(net, into, net.to[ea], net.frm[eb], between, tol)
            seq: list[int] = []
            for f in fixes[i0:i1 + 1]:
                e = oracle.edge[(f.source_id, f.forward)]
                if not seq or seq[-1] != e:
                    seq.append(e)
            truth = tuple(seq[1:-1])
            if not routes:
                tally["none"] += 1
            elif len(routes) == 1:
                tally["one: the driven one" if truth in routes else "one: another"] += 1
            else:
                tally["several"] += 1
    return tally


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--towns", nargs="*", default=list(NETWORKS))
    ap.add_argument("--interval", type=int, default=30)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--vehicles", type=int, default=6)
    ap.add_argument("--duration", type=float, default=7200.0)
    a = ap.parse_args()
    total: Counter[str] = Counter()
    for name in a.towns:
        total += sort_steps(name, a.seed, a.interval, a.vehicles, a.duration)
    long_way = total["driven the long way"]
    print(f"| steps driven the long way ({a.interval} s) | steps | share |")
    print("|---|---:|---:|")
    for k in ("one: the driven one", "one: another", "several", "none"):
        share = f"{total[k] / long_way:.0%}" if long_way else "n/a"
        print(f"| {k} | {total[k]:,} | {share} |")


if __name__ == "__main__":
    main()
