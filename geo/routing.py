"""Directed routing network for map matching, in local metres.

Built on ``geo.graph.StreetGraph`` but flattened into parallel lists of ints and
floats: the matcher asks for tens of thousands of shortest-path distances per second,
and list indexing is several times faster than attribute access on objects.

Besides the legal edges, every one-way block without a twin arc gets a *wrong-way*
pseudo-edge whose route cost carries a heavy penalty. A plow in an emergency does
drive a one-way backwards; without that edge the matcher would invent a detour round
the block and credit streets nobody drove.

Where two dead ends lie a few metres apart the map most likely lacks the road between
them (``geo.gaps``); a *connector* edge (no segment: ``seg`` is -1) lets a route pass,
at a cost (``RoutingNet._bridge_gaps``). Connectors are never candidates and never credited.
"""

from __future__ import annotations

import heapq
import math
from collections import OrderedDict
from collections.abc import Sequence
from typing import cast

import numpy as np
import numpy.typing as npt
import shapely

from geo.gaps import Gap, dead_end_gaps
from geo.graph import StreetGraph
from geo.network import Segment

Lines = npt.NDArray[np.object_]  # shapely LineStrings, one per segment

# node -> (route cost, route length, last and first edge of the route: -1 at the source);
# ``EdgeSearch`` keeps the same by the edge a route goes onto (-1: it follows the source)
Tree = dict[int, tuple[float, float, int, int]]


class RoutingNet:
    """Directed edges (legal + wrong-way pseudo-edges) and bounded Dijkstra with a cache."""

    def __init__(
        self,
        segments: Sequence[Segment],
        lines: Lines,
        *,
        wrong_way_penalty_m: float,
        map_gap_m: float = 0.0,
        map_gap_penalty_m: float = 0.0,
        cache_nodes: int = 500_000,
    ) -> None:
        """``lines``: each segment's line in the matcher's local plane (metres)."""
        seg_lengths = [float(x) for x in shapely.length(lines)]
        graph = StreetGraph(segments)
        seg_index = {s.source_id: i for i, s in enumerate(segments)}
        node_id: dict[str, int] = {}

        def nid(name: str) -> int:
            return node_id.setdefault(name, len(node_id))

        self.seg: list[int] = []  # segment index of each edge (-1: a connector)
        self.forward: list[bool] = []  # driven along the segment's coords
        self.wrong_way: list[bool] = []
        self.frm: list[int] = []
        self.to: list[int] = []
        self.length: list[float] = []  # projected metres
        self.cost: list[float] = []  # length, plus the penalty on wrong-way edges
        for edge in graph.edges:
            k = seg_index[edge.source_id]
            self._add(k, edge.forward, False, nid(edge.from_node), nid(edge.to_node),
                      seg_lengths[k], 0.0)
        self.twin = self._find_twins(segments, seg_lengths, lines)
        for i, s in enumerate(segments):
            if s.oneway and i not in self.twin:
                self._add(i, False, True, nid(s.end_node), nid(s.start_node), seg_lengths[i],
                          wrong_way_penalty_m)
        self.node_count = len(node_id)
        self.gaps_bridged = self._bridge_gaps(dead_end_gaps(segments, map_gap_m), node_id,
                                              map_gap_penalty_m)
        self.out: list[list[int]] = [[] for _ in range(self.node_count)]
        for e in range(len(self.seg)):
            self.out[self.frm[e]].append(e)
        self.edges_of_seg: list[list[int]] = [[] for _ in segments]
        for e, s_i in enumerate(self.seg):
            if s_i >= 0:
                self.edges_of_seg[s_i].append(e)
        self.reverse: list[int] = [self._reverse(e) for e in range(len(self.seg))]
        # A U-turn at a node is only normal where nothing else leads on (a dead end;
        # a connector across a gap in the map does not lead on: vehicles turn there).
        self.dead_end: list[bool] = [
            not any(not self.wrong_way[x] and self.seg[x] >= 0 and self.to[x] != self.frm[e]
                    for x in self.out[n])
            for e, n in enumerate(self.to)
        ]
        # Settled nodes (or edges) over all cached searches, bounded so a matcher that
        # runs for a whole winter keeps a steady memory footprint (~100 B per entry).
        # Keyed by (by edge, source): Search from a node, EdgeSearch from an edge.
        self._searches: OrderedDict[tuple[bool, int], Search | EdgeSearch] = OrderedDict()
        self._cache_nodes = cache_nodes
        self.settled = 0
        # Where a route may go on from each edge: not back the way it came, but at a
        # dead end (EdgeSearch).
        self.succ: list[list[int]] = [
            [x for x in self.out[self.to[e]] if self.dead_end[e] or x != self.reverse[e]]
            for e in range(len(self.seg))
        ]

    def _add(self, seg: int, fwd: bool, wrong: bool, a: int, b: int, length: float,
             penalty: float) -> None:
        self.seg.append(seg)
        self.forward.append(fwd)
        self.wrong_way.append(wrong)
        self.frm.append(a)
        self.to.append(b)
        self.length.append(length)
        self.cost.append(length + penalty)

    def _bridge_gaps(self, gaps: Sequence[Gap], node_id: dict[str, int],
                     penalty_m: float) -> int:
        """Connector edges (``seg`` -1, both ways) across ``gaps`` (``geo.gaps``).

        Two dead ends a few metres apart, not already joined, are nearly always one
        road the data breaks; a vehicle seen on one and then the other got across,
        and without a connector the matcher can only split the track there, losing
        the ends of both streets, or drop the fix as an outlier and invent a detour
        round the block. The penalty keeps the connector for fixes that need it.
        """
        for g in gaps:
            a, b = node_id[g.node_a], node_id[g.node_b]
            self._add(-1, True, False, a, b, g.distance_m, penalty_m)
            self._add(-1, True, False, b, a, g.distance_m, penalty_m)
        return len(gaps)

    @staticmethod
    def _find_twins(
        segments: Sequence[Segment], lengths: Sequence[float],
        lines: Lines,
    ) -> dict[int, int]:
        """One-way arcs whose opposite arc is the same road (networks of directed arcs).

        Such an arc needs no wrong-way pseudo-edge: driving it backwards *is* driving
        its twin, and a U-turn mid-block switches from one to the other. The same
        ends and length are not enough: the two halves of a turning loop have them
        too, and going on round a loop is no U-turn, nor is driving one half backwards
        driving the other. Twins also lie on each other.
        """
        by_ends: dict[tuple[str, str], list[int]] = {}
        for i, s in enumerate(segments):
            if s.oneway:
                by_ends.setdefault((s.start_node, s.end_node), []).append(i)
        twins: dict[int, int] = {}
        for i, s in enumerate(segments):
            if not s.oneway:
                continue
            for j in by_ends.get((s.end_node, s.start_node), ()):
                if (j != i and abs(lengths[i] - lengths[j]) <= max(2.0, 0.03 * lengths[i])
                        and shapely.distance(*shapely.line_interpolate_point(
                            [lines[i], lines[j]], 0.5, normalized=True))
                        <= max(3.0, 0.05 * lengths[i])):
                    twins[i] = j
                    break
        return twins

    def _reverse(self, e: int) -> int:
        s = self.seg[e]
        if s < 0:
            return -1
        for x in self.edges_of_seg[s]:
            if x != e and self.forward[x] != self.forward[e]:
                return x
        twin = self.twin.get(s)
        if twin is not None and self.edges_of_seg[twin]:
            return self.edges_of_seg[twin][0]
        return -1

    @property
    def edge_count(self) -> int:
        return len(self.seg)

    def search(self, source: int) -> Search:
        """The (cached, resumable) shortest-route search from node ``source``."""
        return cast(Search, self._cached((False, source)))

    def edge_search(self, source: int) -> EdgeSearch:
        """The (cached, resumable) search on from the end of edge ``source`` that never
        turns round at a crossing."""
        return cast(EdgeSearch, self._cached((True, source)))

    def _cached(self, key: tuple[bool, int]) -> Search | EdgeSearch:
        found = self._searches.get(key)
        if found is None:
            by_edge, source = key
            found = self._searches[key] = (EdgeSearch if by_edge else Search)(self, source)
            while self.settled > self._cache_nodes and len(self._searches) > 1:
                _, old = self._searches.popitem(last=False)
                self.settled -= len(old.done)
        else:
            self._searches.move_to_end(key)
        return found

    def edge_path(self, source: int, target: int, bound: float) -> list[int]:
        """Edges of the best ``edge_search`` route from the end of edge ``source`` onto
        edge ``target``, neither included (empty where ``target`` follows directly)."""
        search = self.edge_search(source)
        hit = search.reach(target, bound)
        if hit is None:
            raise ValueError(f"edge {target} not reachable from edge {source} within {bound} m")
        edges: list[int] = []
        via = hit[2]
        while via >= 0:
            edges.append(via)
            via = search.done[via][2]
        edges.reverse()
        return edges

    def path(self, source: int, target: int, bound: float) -> list[int]:
        """Edges of the shortest route ``source`` -> ``target`` (empty if same node).

        Normally answered from the search the transition just ran; ``bound`` (a route
        cost known to reach the target) only matters if that was evicted.
        """
        search = self.search(source)
        if search.reach(target, bound) is None:
            raise ValueError(f"node {target} not reachable from {source} within {bound} m")
        done, frm = search.done, self.frm
        edges: list[int] = []
        node = target
        while node != source:
            via = done[node][2]
            edges.append(via)
            node = frm[via]
        edges.reverse()
        return edges


    def cost_avoiding(self, source: int, target: int, avoid: set[int], bound: float) -> float:
        """Cost of the best route ``source`` -> ``target`` that uses no edge of the
        segments ``avoid`` (either way), or inf if none is within ``bound``. Not cached:
        asked only of the few blocks a sparse step's route crosses (``geo.emit``)."""
        out, to, cost, segs = self.out, self.to, self.cost, self.seg
        best = {source: 0.0}
        heap = [(0.0, source)]
        done: set[int] = set()
        while heap:
            c, node = heapq.heappop(heap)
            if node == target:
                return c
            if node in done or c > bound:
                continue
            done.add(node)
            for e in out[node]:
                if segs[e] in avoid:
                    continue
                nc = c + cost[e]
                if nc <= bound and nc < best.get(to[e], math.inf):
                    best[to[e]] = nc
                    heapq.heappush(heap, (nc, to[e]))
        return math.inf


class Search:
    """Dijkstra from one node, expanded only as far as the queries so far needed.

    A transition asks for routes to a handful of nodes usually a block or two away;
    growing a full tree to the worst-case bound would settle hundreds of nodes for
    nothing. The heap is kept, so a later, farther query resumes where this stopped.
    """

    __slots__ = ("best", "done", "heap", "net")

    def __init__(self, net: RoutingNet, source: int) -> None:
        self.net = net
        self.done: Tree = {}
        self.best: dict[int, float] = {source: 0.0}
        self.heap: list[tuple[float, float, int, int, int]] = [(0.0, 0.0, source, -1, -1)]

    def reach(self, target: int, bound: float) -> tuple[float, float, int, int] | None:
        """(cost, length, last edge, first edge) of the best route to ``target``, if
        cost <= bound."""
        hit = self.done.get(target)
        if hit is not None:
            return hit
        heap, done, best = self.heap, self.done, self.best
        net = self.net
        out, to, cost, length = net.out, net.to, net.cost, net.length
        pop, push = heapq.heappop, heapq.heappush
        while heap and heap[0][0] <= bound:
            c, ln, node, via, first = pop(heap)
            if node in done:
                continue
            done[node] = (c, ln, via, first)
            net.settled += 1
            for e in out[node]:
                nxt = to[e]
                nc = c + cost[e]
                if nc < best.get(nxt, math.inf) and nxt not in done:
                    best[nxt] = nc
                    push(heap, (nc, ln + length[e], nxt, e, e if first < 0 else first))
            if node == target:
                return done[node]
        return None


class EdgeSearch:
    """Dijkstra over edges on from the end of one edge, never turning round at a
    crossing (only where nothing else leads on, a dead end); resumable like ``Search``.

    ``Search`` finds the shortest way to a node, and between fixes either side of a
    crossing that is often turning round on it. A plow goes round the block instead;
    with reported speeds, speed x time can tell the two apart, so where the shortest
    way turns round the transition offers this search's way round beside it.
    """

    __slots__ = ("best", "done", "heap", "net")

    def __init__(self, net: RoutingNet, source: int) -> None:
        self.net = net
        self.done: Tree = {}  # edge -> (cost and length up to it, last edge, first edge)
        self.best: dict[int, float] = {}
        self.heap = [(0.0, 0.0, e, -1, -1) for e in net.succ[source]]
        heapq.heapify(self.heap)
        for e in net.succ[source]:
            self.best[e] = 0.0

    def reach(self, target: int, bound: float) -> tuple[float, float, int, int] | None:
        """(cost, length, last edge, first edge) of the best route onto edge ``target``
        (up to where it begins), if its cost <= bound."""
        hit = self.done.get(target)
        if hit is not None:
            return hit
        heap, done, best = self.heap, self.done, self.best
        net = self.net
        succ, cost, length = net.succ, net.cost, net.length
        pop, push = heapq.heappop, heapq.heappush
        while heap and heap[0][0] <= bound:
            c, ln, e, via, first = pop(heap)
            if e in done:
                continue
            done[e] = (c, ln, via, first)
            net.settled += 1
            nc, nl = c + cost[e], ln + length[e]
            f = e if first < 0 else first
            for x in succ[e]:
                if nc < best.get(x, math.inf) and x not in done:
                    best[x] = nc
                    push(heap, (nc, nl, x, e, f))
            if e == target:
                return done[e]
        return None
