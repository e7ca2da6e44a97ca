"""Directed street graph: edge directions, adjacency and strongly connected parts."""

from __future__ import annotations

from collections import deque

import pytest
from geo_shared_data import shared_data

from app.streets.osm import read_osm
from geo.graph import StreetGraph
from geo.network import Segment, build_segments


def seg(sid: str, a: str, b: str, *, oneway: bool = False) -> Segment:
    # Coordinates only need to differ per node here; the graph never measures them.
    xy = {"A": (15.0, 48.0), "B": (15.001, 48.0), "C": (15.001, 48.001), "D": (15.0, 48.001)}
    return Segment(sid, None, "residential", oneway, (xy[a], xy[b]), 75.0, 3, a, b)


def test_two_way_gets_both_edges_one_way_only_forward() -> None:
    g = StreetGraph([seg("ab", "A", "B"), seg("bc", "B", "C", oneway=True)])
    assert len(g.edges) == 3
    assert [(e.source_id, e.to_node) for e in g.edges_from("B")] == [("ab", "A"), ("bc", "C")]
    assert g.edges_from("C") == []  # the one-way cannot be driven back
    assert [(e.source_id, e.from_node) for e in g.edges_to("B")] == [("ab", "A")]
    fwd, back = g.edges_of("ab")
    assert fwd.forward and not back.forward
    assert back.coords == fwd.coords[::-1] and back.from_node == "B"
    assert g.reverse_of(fwd) is back and g.reverse_of(back) is fwd
    (only,) = g.edges_of("bc")
    assert g.reverse_of(only) is None
    assert [g.edges[e.index] for e in g.edges] == g.edges
    assert g.edges_from("nowhere") == ()


def test_duplicate_segment_ids_are_rejected() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        StreetGraph([seg("x", "A", "B"), seg("x", "B", "C")])


def test_one_way_ring_with_a_spur_out_is_not_one_component() -> None:
    ring = [seg("ab", "A", "B", oneway=True), seg("bc", "B", "C", oneway=True),
            seg("ca", "C", "A", oneway=True), seg("cd", "C", "D", oneway=True)]
    comps = StreetGraph(ring).strongly_connected_components()
    assert comps == [{"A", "B", "C"}, {"D"}]


def reachable(g: StreetGraph, start: str, *, backwards: bool = False) -> set[str]:
    seen, todo = {start}, deque([start])
    while todo:
        node = todo.popleft()
        edges = g.edges_to(node) if backwards else g.edges_from(node)
        for e in edges:
            nxt = e.from_node if backwards else e.to_node
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def test_krems_graph_directions_and_components() -> None:
    segments = build_segments(read_osm(shared_data("osm", "krems.osm.gz")))
    g = StreetGraph(segments)
    oneway = sum(s.oneway for s in segments)
    assert len(g.edges) == 2 * len(segments) - oneway
    for s in segments:
        edges = g.edges_of(s.source_id)
        assert [(e.from_node, e.to_node) for e in edges] == (
            [(s.start_node, s.end_node)] if s.oneway
            else [(s.start_node, s.end_node), (s.end_node, s.start_node)]
        )
    # Every edge is listed exactly once out of its start and into its end.
    assert sum(len(g.edges_from(n)) for n in g.nodes) == len(g.edges)
    assert sum(len(g.edges_to(n)) for n in g.nodes) == len(g.edges)

    comps = g.strongly_connected_components()
    assert sum(len(c) for c in comps) == len(g.nodes)
    assert set().union(*comps) == set(g.nodes)
    big = comps[0]
    # The town's core network is one piece; only a minority of nodes (private or
    # boundary-clipped stubs) can't get back. Check the claim by brute force.
    assert len(big) > 0.8 * len(g.nodes)
    probe = sorted(big)[0]
    assert reachable(g, probe) & reachable(g, probe, backwards=True) == big
