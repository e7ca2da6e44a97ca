"""Directed street graph over block segments.

Each segment contributes one directed edge per legal driving direction. Edges are
plain objects in a list and adjacency is a dict of lists, which is all a walker or a
shortest-path search needs and keeps lookups O(1) without a graph library.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from geo.network import Coord, Segment


@dataclass(frozen=True, slots=True)
class Edge:
    """One legal way to drive a segment; ``coords`` are in driving order."""

    index: int  # position in StreetGraph.edges
    segment: Segment
    forward: bool  # True when driven in the direction of segment.coords
    from_node: str
    to_node: str
    coords: tuple[Coord, ...]

    @property
    def source_id(self) -> str:
        return self.segment.source_id

    @property
    def length_m(self) -> float:
        return self.segment.length_m


class StreetGraph:
    """Directed multigraph: two blocks may join the same pair of intersections."""

    __slots__ = ("_by_segment", "_in", "_out", "edges", "segments")

    def __init__(self, segments: Iterable[Segment]) -> None:
        self.segments: list[Segment] = list(segments)
        self.edges: list[Edge] = []
        self._out: dict[str, list[Edge]] = {}
        self._in: dict[str, list[Edge]] = {}
        self._by_segment: dict[str, list[Edge]] = {}
        for seg in self.segments:
            if seg.source_id in self._by_segment:
                raise ValueError(f"duplicate segment id {seg.source_id!r}")
            self._by_segment[seg.source_id] = []
            self._add(seg, True, seg.start_node, seg.end_node, seg.coords)
            if not seg.oneway:
                self._add(seg, False, seg.end_node, seg.start_node, seg.coords[::-1])

    def _add(
        self, seg: Segment, forward: bool, a: str, b: str, coords: tuple[Coord, ...]
    ) -> None:
        edge = Edge(len(self.edges), seg, forward, a, b, coords)
        self.edges.append(edge)
        self._out.setdefault(a, []).append(edge)
        self._in.setdefault(b, []).append(edge)
        self._out.setdefault(b, [])
        self._in.setdefault(a, [])
        self._by_segment[seg.source_id].append(edge)

    @property
    def nodes(self) -> Sequence[str]:
        return list(self._out)

    def edges_from(self, node: str) -> Sequence[Edge]:
        """Edges leaving ``node`` (empty for unknown nodes)."""
        return self._out.get(node, ())

    def edges_to(self, node: str) -> Sequence[Edge]:
        """Edges arriving at ``node``; map matching walks transitions backwards too."""
        return self._in.get(node, ())

    def edges_of(self, source_id: str) -> Sequence[Edge]:
        """The one or two directed edges of a segment."""
        return self._by_segment.get(source_id, ())

    def reverse_of(self, edge: Edge) -> Edge | None:
        """The same block driven the other way, if that is legal (a U-turn target)."""
        for other in self._by_segment[edge.source_id]:
            if other.forward is not edge.forward:
                return other
        return None

    def strongly_connected_components(self) -> list[set[str]]:
        """Node sets from which every member can reach every other, largest first.

        A vehicle inside one never gets trapped, e.g. at a one-way that leaves the
        extract; outside it, it can be. Iterative Tarjan, since blocks-per-town easily
        exceed Python's recursion limit.
        """
        index: dict[str, int] = {}
        low: dict[str, int] = {}
        on_stack: set[str] = set()
        stack: list[str] = []
        components: list[set[str]] = []
        counter = 0
        for root in self._out:
            if root in index:
                continue
            work: list[tuple[str, int]] = [(root, 0)]
            while work:
                node, i = work.pop()
                if i == 0:
                    index[node] = low[node] = counter
                    counter += 1
                    stack.append(node)
                    on_stack.add(node)
                out = self._out[node]
                while i < len(out):
                    nxt = out[i].to_node
                    i += 1
                    if nxt not in index:
                        work.append((node, i))
                        work.append((nxt, 0))
                        break
                    if nxt in on_stack:
                        low[node] = min(low[node], index[nxt])
                else:
                    if low[node] == index[node]:
                        comp: set[str] = set()
                        while True:
                            member = stack.pop()
                            on_stack.discard(member)
                            comp.add(member)
                            if member == node:
                                break
                        components.append(comp)
                    if work:
                        parent = work[-1][0]
                        low[parent] = min(low[parent], low[node])
        components.sort(key=len, reverse=True)
        return components
