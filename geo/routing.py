"""Directed routing network for map matching, in local metres.

Built on ``geo.graph.StreetGraph`` but flattened into parallel lists of ints and
floats: the matcher asks for tens of thousands of shortest-path distances per second,
and list indexing is several times faster than attribute access on objects.

Besides the legal edges, every one-way block without a twin arc gets a *wrong-way*
pseudo-edge whose route cost carries a heavy penalty. A plow in an emergency does
drive a one-way backwards; without that edge the matcher would invent a detour round
the block and credit streets nobody drove.
"""

from __future__ import annotations

import heapq
from collections import OrderedDict
from collections.abc import Sequence

from geo.graph import StreetGraph
from geo.network import Segment

# node -> (route cost, route length, last edge into it, or -1 at the source)
Tree = dict[int, tuple[float, float, int]]


class RoutingNet:
    """Directed edges (legal + wrong-way pseudo-edges) and bounded Dijkstra with a cache."""

    def __init__(
        self,
        segments: Sequence[Segment],
        seg_lengths: Sequence[float],
        *,
        wrong_way_penalty_m: float,
        cache_trees: int = 4096,
    ) -> None:
        graph = StreetGraph(segments)
        seg_index = {s.source_id: i for i, s in enumerate(segments)}
        node_id: dict[str, int] = {}

        def nid(name: str) -> int:
            return node_id.setdefault(name, len(node_id))

        self.seg: list[int] = []  # segment index of each edge
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
        self.twin = self._find_twins(segments, seg_lengths)
        for i, s in enumerate(segments):
            if s.oneway and i not in self.twin:
                self._add(i, False, True, nid(s.end_node), nid(s.start_node), seg_lengths[i],
                          wrong_way_penalty_m)
        self.node_count = len(node_id)
        self.out: list[list[int]] = [[] for _ in range(self.node_count)]
        for e in range(len(self.seg)):
            self.out[self.frm[e]].append(e)
        self.edges_of_seg: list[list[int]] = [[] for _ in segments]
        for e, s_i in enumerate(self.seg):
            self.edges_of_seg[s_i].append(e)
        self.reverse: list[int] = [self._reverse(e) for e in range(len(self.seg))]
        # A U-turn at a node is only normal where nothing else leads on (a dead end).
        self.dead_end: list[bool] = [
            not any(not self.wrong_way[x] and self.to[x] != self.frm[e] for x in self.out[n])
            for e, n in enumerate(self.to)
        ]
        self._trees: OrderedDict[int, tuple[float, Tree]] = OrderedDict()
        self._cache_trees = cache_trees

    def _add(self, seg: int, fwd: bool, wrong: bool, a: int, b: int, length: float,
             penalty: float) -> None:
        self.seg.append(seg)
        self.forward.append(fwd)
        self.wrong_way.append(wrong)
        self.frm.append(a)
        self.to.append(b)
        self.length.append(length)
        self.cost.append(length + penalty)

    @staticmethod
    def _find_twins(segments: Sequence[Segment], lengths: Sequence[float]) -> dict[int, int]:
        """One-way arcs whose opposite arc is the same road (networks of directed arcs).

        Such an arc needs no wrong-way pseudo-edge: driving it backwards *is* driving
        its twin, and a U-turn mid-block switches from one to the other.
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
                if j != i and abs(lengths[i] - lengths[j]) <= max(2.0, 0.03 * lengths[i]):
                    twins[i] = j
                    break
        return twins

    def _reverse(self, e: int) -> int:
        s = self.seg[e]
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

    def tree(self, source: int, bound: float) -> Tree:
        """Shortest routes (by cost) from ``source`` to every node within ``bound``.

        Cached per source node; a later request with a larger bound regrows the tree
        (doubling, so a node's tree is rebuilt only a few times).
        """
        hit = self._trees.get(source)
        if hit is not None:
            if hit[0] >= bound:
                self._trees.move_to_end(source)
                return hit[1]
            bound = max(bound, 2.0 * hit[0])
        tree = self._dijkstra(source, bound)
        self._trees[source] = (bound, tree)
        self._trees.move_to_end(source)
        if len(self._trees) > self._cache_trees:
            self._trees.popitem(last=False)
        return tree

    def _dijkstra(self, source: int, bound: float) -> Tree:
        out, to, cost, length = self.out, self.to, self.cost, self.length
        done: Tree = {}
        best: dict[int, float] = {source: 0.0}
        heap: list[tuple[float, float, int, int]] = [(0.0, 0.0, source, -1)]
        while heap:
            c, ln, node, via = heapq.heappop(heap)
            if node in done:
                continue
            done[node] = (c, ln, via)
            for e in out[node]:
                nxt = to[e]
                nc = c + cost[e]
                if nc <= bound and nc < best.get(nxt, bound + 1.0) and nxt not in done:
                    best[nxt] = nc
                    heapq.heappush(heap, (nc, ln + length[e], nxt, e))
        return done

    def path(self, source: int, target: int, bound: float) -> list[int]:
        """Edges of the shortest route ``source`` -> ``target`` (empty if same node).

        Normally answered from the tree the transition search just used; ``bound``
        (a route cost known to reach the target) only matters if it was evicted.
        """
        hit = self._trees.get(source)
        tree = hit[1] if hit is not None and target in hit[1] else self.tree(source, bound)
        edges: list[int] = []
        node = target
        while node != source:
            _, _, via = tree[node]
            edges.append(via)
            node = self.frm[via]
        edges.reverse()
        return edges
