"""The matcher's routing network: twin arcs, wrong-way pseudo-edges, U-turn structure."""

from __future__ import annotations

import dataclasses
import itertools
import math

from geo_shared_data import shared_data

from app.streets.load import load_segments
from geo.cluster import Seed
from geo.emit import pieces
from geo.gaps import dead_end_gaps, undershoots
from geo.match import MatchConfig, Matcher, Ping
from geo.network import Segment
from geo.transition import ROUND, Step


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


def test_two_dead_ends_a_few_metres_apart_are_bridged_and_stay_dead_ends() -> None:
    # Real track 00000075's map: the service road of arc 507 ends 11 m from where
    # the one of arc 509 begins, nothing between them, and the car drove across.
    segments = load_segments(shared_data("gps-truth", "00000075_network.geojson.gz"),
                             id_property="arc_id", oneway_default=True)
    index = {s.source_id: i for i, s in enumerate(segments)}
    net = Matcher(segments).net
    into = next(e for e in net.edges_of_seg[index["507"]] if not net.wrong_way[e])
    onto = next(e for e in net.edges_of_seg[index["509"]] if not net.wrong_way[e])
    gap = [e for e in range(net.edge_count) if net.seg[e] < 0
           and (net.frm[e], net.to[e]) == (net.to[into], net.frm[onto])]
    assert len(gap) == 1
    assert 9.0 < net.length[gap[0]] < 12.0
    assert net.cost[gap[0]] == net.length[gap[0]] + 80.0
    # The connector is not a way on: turning at the dead end is still normal there.
    assert net.dead_end[into]
    route = net.path(net.to[into], net.frm[onto], 200.0)
    assert route == gap
    # Every connector joins two dead ends at most 15 m apart, both ways.
    bridges = [e for e in range(net.edge_count) if net.seg[e] < 0]
    assert len(bridges) == 2 * net.gaps_bridged
    assert all(net.length[e] <= 15.0 for e in bridges)
    ends = {(net.frm[e], net.to[e]) for e in bridges}
    assert all((b, a) in ends for a, b in ends)
    # Off, there are none, and the track must split (or detour) there.
    off = Matcher(segments, MatchConfig(map_gap_m=0.0)).net
    assert off.gaps_bridged == 0 and all(s >= 0 for s in off.seg)


def test_dead_end_gaps_are_unjoined_dead_ends_nearest_first() -> None:
    segments = load_segments(shared_data("gps-truth", "00000075_network.geojson.gz"),
                             id_property="arc_id", oneway_default=True)
    gaps = dead_end_gaps(segments, 15.0)
    assert [(g.segment_a, g.segment_b, round(g.distance_m, 1)) for g in gaps] == [
        ("507", "509", 10.6), ("1328", "1348", 12.6)]
    assert dead_end_gaps(segments, 10.0) == []
    # A lone 10 m block: both its ends are dead ends 10 m apart, but it joins them.
    lone = dataclasses.replace(segments[0], coords=((15.6, 48.41), (15.600135, 48.41)),
                               start_node="a", end_node="b", length_m=10.0)
    assert dead_end_gaps([lone], 15.0) == []


def _line(sid: str, a: str, b: str, *xy: tuple[float, float]) -> Segment:
    """A two-way block through plane points (metres east/north of 15.6 E, 48.41 N)."""
    mx, my = 111_320.0 * math.cos(math.radians(48.41)), 110_950.0
    coords = tuple((15.6 + x / mx, 48.41 + y / my) for x, y in xy)
    length = sum(math.dist(p, q) for p, q in itertools.pairwise(xy))
    return Segment(sid, None, "residential", False, coords, length, 3, a, b)


def test_a_dead_end_short_of_a_street_it_does_not_meet_is_an_undershoot() -> None:
    road = [_line("r1", "W", "M", (-100, 0), (0, 0)), _line("r2", "M", "E", (0, 0), (100, 0))]
    # A side street stops 3 m short of the road, 40 m from its crossing: the junction
    # the file lacks. Another meets the road at M: no undershoot.
    short = _line("s", "S0", "S1", (40, -80), (40, -3))
    met = _line("t", "M", "T1", (0, 0), (0, 80))
    found = undershoots([*road, short, met], 5.0)
    assert [(u.segment, u.near, round(u.distance_m, 1)) for u in found] == [("s", "r2", 3.0)]
    assert undershoots([*road, short, met], 2.0) == []
    # Two dead ends facing each other are a gap (dead_end_gaps), not an undershoot; nor is
    # a dead end near a side street leaving its own neighbouring node.
    a = _line("a", "A0", "A1", (300, 0), (400, 0))
    b = _line("b", "B0", "B1", (403, 0), (500, 0))
    assert undershoots([a, b], 5.0) == [] and len(dead_end_gaps([a, b], 5.0)) == 1
    stub = [_line("st", "X", "Y", (600, 0), (603, 0)), _line("x1", "X", "X1", (600, 0), (600, 50)),
            _line("x2", "X", "X2", (600, 0), (700, 0))]
    assert undershoots(stub, 5.0) == []
    # Two short blocks from a street it meets by road 5 m on: joined already.
    two = [_line("s1", "Z", "Y1", (800, 0), (802.5, 0)), _line("s2", "Y1", "Y2", (802.5, 0),
                                                              (802.5, 2.5)),
           _line("r", "Y2", "R1", (802.5, 2.5), (802.5, 100)),
           _line("q", "Q1", "Y2", (700, 2.5), (802.5, 2.5))]
    assert undershoots(two, 5.0) == []
    # Nor a motorway passing under or over the dead end (no node: a tunnel, a bridge).
    over = dataclasses.replace(_line("m", "M0", "M1", (-100, -3), (200, -3)),
                               road_class="motorway")
    assert undershoots([short, over], 5.0) == []


def test_undershoots_on_real_streets() -> None:
    # Baltimore's OSM: w280411080 ends 0.7 m from the side of w280411078 without a node.
    segments = load_segments(shared_data("osm", "baltimore.osm.pbf"))
    found = {u.segment: u for u in undershoots(segments, 5.0)}
    u = found["w280411080:2"]
    assert u.near == "w280411078:2" and 0.5 < u.distance_m < 1.0
    # A parking aisle 4.7 m above the Fort McHenry Tunnel (I-95) is not one.
    assert "w292814965:0" not in found
    # Porto: a 2.4 m stub that meets its street 4.8 m on by road is not one either.
    porto = {u.segment for u in undershoots(load_segments(shared_data("osm", "porto.osm.pbf")),
                                            5.0)}
    assert "w696971861:0" not in porto and len(porto) >= 5


def test_the_edge_search_turns_round_only_at_dead_ends() -> None:
    # A block A-B-C-D, a street on from B to a dead end E, and a 30 m stub C-F.
    # From A->B back onto B->A the shortest way to node B is to turn round on the
    # crossing at B; the edge search may not, and the shortest way that turns round
    # only at a dead end is out to E and back (200 m), not round by F (260 m).
    segs = [_line("ab", "A", "B", (0, 0), (100, 0)), _line("bc", "B", "C", (100, 0), (100, 100)),
            _line("cd", "C", "D", (100, 100), (0, 100)), _line("da", "D", "A", (0, 100), (0, 0)),
            _line("be", "B", "E", (100, 0), (200, 0)), _line("cf", "C", "F", (100, 100),
                                                             (100, 130))]
    net = Matcher(segs).net
    by = {(segs[net.seg[e]].source_id, net.forward[e]): e for e in range(net.edge_count)}
    ab, ba, be, eb = by["ab", True], by["ab", False], by["be", True], by["be", False]
    assert net.path(net.to[ab], net.frm[ba], 500.0) == []  # turned round at B
    assert net.edge_path(ab, ba, 500.0) == [be, eb]
    hit = net.edge_search(ab).reach(ba, 500.0)
    assert hit is not None and abs(hit[1] - 200.0) < 1.0 and hit[3] == be and hit[2] == eb
    # Nothing within 150 m (a fresh search: a cached one answers what it found), and
    # on round the block is no turning round.
    assert Matcher(segs).net.edge_search(ab).reach(ba, 150.0) is None
    bc, cd, da = by["bc", True], by["cd", True], by["da", True]
    assert net.edge_path(ab, ab, 1000.0) == [bc, cd, da]


def test_a_move_round_the_block_is_rebuilt_after_its_search_was_evicted() -> None:
    # The search cache is shared by every vehicle, so the search that scored a move
    # may be gone when the move is committed (up to `lag` steps later); emit then
    # searches again. It must find the move whatever the fixes' times say: here one
    # second for 200 m of way round, which no bound from speed x time would reach.
    segs = [_line("ab", "A", "B", (0, 0), (100, 0)), _line("bc", "B", "C", (100, 0), (100, 100)),
            _line("cd", "C", "D", (100, 100), (0, 100)), _line("da", "D", "A", (0, 100), (0, 0)),
            _line("be", "B", "E", (100, 0), (200, 0))]
    fresh = Matcher(segs)  # nothing cached: as after an eviction
    net = fresh.net
    by = {(segs[net.seg[e]].source_id, net.forward[e]): e for e in range(net.edge_count)}
    ab, ba = by["ab", True], by["ab", False]
    steps = []
    for t, e in ((0.0, ab), (1.0, ba)):
        s = Step(Seed.at(Ping("v", t, 15.6, 48.41, 9.0), 50.0, 0.0), 4.0, ([e], [50.0], [0.0]))
        s.chosen, s.kind = 0, [ROUND]
        steps.append(s)
    route = pieces(fresh, *steps)
    # On to B, out to the dead end E and back, onto B->A: segments ab, be, be, ab.
    assert [(net.seg[e], round(o1), round(o2)) for e, o1, o2 in route] == [
        (0, 50, 100), (4, 0, 100), (4, 0, 100), (0, 0, 50)]
