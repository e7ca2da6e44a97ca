"""The matcher's routing network: twin arcs, wrong-way pseudo-edges, U-turn structure."""

from __future__ import annotations

from geo_shared_data import shared_data

from app.streets.load import load_segments
from geo.match import Matcher


def test_a_turning_loop_is_not_a_pair_of_twin_arcs() -> None:
    # At the end of a service road in Porto, two one-way halves of a 52 m turning
    # loop join the same two nodes in opposite directions, 26 m each: the same ends
    # and length as the two directions of one road, but driving on round the loop
    # is no U-turn, and driving one half backwards is not driving the other.
    segments = load_segments(shared_data("osm", "porto.osm.pbf"))
    index = {s.source_id: i for i, s in enumerate(segments)}
    a, b = index["w459895303:0"], index["w459895304:0"]
    sa, sb = segments[a], segments[b]
    assert sa.oneway and sb.oneway
    assert (sa.start_node, sa.end_node) == (sb.end_node, sb.start_node)
    assert abs(sa.length_m - sb.length_m) < 2.0
    net = Matcher(segments).net
    assert a not in net.twin and b not in net.twin
    # Each half has a wrong-way pseudo-edge of its own instead.
    assert [net.wrong_way[e] for e in net.edges_of_seg[a]] == [False, True]


def test_the_two_arcs_of_one_road_in_a_directed_arc_network_are_twins() -> None:
    # The gps-truth networks give every two-way road as two arcs with one geometry.
    segments = load_segments(shared_data("gps-truth", "00000046_network.geojson.gz"),
                             id_property="arc_id", oneway_default=True)
    net = Matcher(segments).net
    assert len(net.twin) == 646
    for i, j in net.twin.items():
        assert net.twin[j] == i
        assert segments[i].coords == segments[j].coords[::-1]
