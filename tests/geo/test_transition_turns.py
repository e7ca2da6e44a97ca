"""Transition kinds on a minimal network whose lengths are known exactly.

A T junction: a through road W-J-E and a dead end J-D of length L. The vehicle was
last seen 20 m into the dead end and is next seen, 3 s later, 25 m along the road to
E. Position only: nothing tells whether it went on to the end of the dead end and
back (2 L - 20 + 25 m) or turned where it was seen (20 + 25 m); seen seconds apart,
the fixes say the second (geo.transition, ``seen``). A connector across a gap in the
map, and the dead end's own pieces, must come out as the right stretches of streets.
"""

from __future__ import annotations

import math

import numpy as np

from geo.cluster import Seed
from geo.emit import pieces
from geo.match import MatchConfig, Matcher, Ping
from geo.network import Segment
from geo.transition import ROUTED, TURN_ROUTED, Step, transition

LAT0, LON0 = 48.0, 15.0
MX, MY = 111_320.0 * math.cos(math.radians(LAT0)), 110_950.0


def _ll(x: float, y: float) -> tuple[float, float]:
    return LON0 + x / MX, LAT0 + y / MY


def _seg(sid: str, a: str, b: str, pa: tuple[float, float], pb: tuple[float, float]) -> Segment:
    return Segment(sid, None, "residential", False, (_ll(*pa), _ll(*pb)), math.dist(pa, pb), 3,
                   a, b)


def _step(m: Matcher, x: float, y: float, t: float, speed: float | None = None) -> Step:
    lon, lat = _ll(x, y)
    ping = Ping("v", t, lon, lat, speed, None, 5.0)
    (px,), (py,) = m.proj.to_xy([lon], [lat])
    sigma = m.sigma(5.0)
    zero = np.zeros(1)
    cands = m.candidates(np.array([px]), np.array([py]), np.array([sigma]), zero, zero, zero)
    return Step(Seed.at(ping, float(px), float(py)), sigma, cands[0])


def _t_junction(dead_m: float, *extra: Segment) -> Matcher:
    return Matcher([_seg("w", "W", "J", (-300, 0), (0, 0)), _seg("e", "J", "E", (0, 0), (300, 0)),
                    _seg("d", "J", "D", (0, 0), (0, dead_m)), *extra])


def _best(m: Matcher, a: Step, b: Step) -> tuple[int, int]:
    """(candidate of b, kind) of the best transition from a's state on the dead end,
    driven inwards."""
    net = m.net
    inwards = [0.0 if m.segments[net.seg[e]].source_id == "d" and net.forward[e] else -math.inf
               for e in a.edges]
    best, back, kind, dist = transition(m, a, inwards, b)
    j = max(range(len(best)), key=best.__getitem__)
    a.chosen, b.chosen = back[j], j
    b.back, b.kind, b.dist = back, kind, dist
    return (j, kind[j]) if best[j] > -math.inf else (-1, -1)


def test_seen_seconds_apart_a_vehicle_turned_where_it_was_seen_however_long_the_dead_end() -> None:
    for dead_m in (40.0, 60.0, 150.0, 300.0):
        m = _t_junction(dead_m)
        a, b = _step(m, 0, 20, 0.0), _step(m, 25, 0, 3.0)
        j, kind = _best(m, a, b)
        assert kind == TURN_ROUTED, dead_m
        assert m.segments[m.net.seg[b.edges[j]]].source_id == "e"
        assert abs(b.dist[j] - 45.0) < 1.0, (dead_m, b.dist[j])
        # Back out of the dead end from where it was seen, then 25 m along e.
        (e1, lo1, hi1), (e2, lo2, hi2) = pieces(m, a, b)
        lr = m.net.length[e1]  # the dead end driven outwards, in the plane's metres
        assert (m.segments[m.net.seg[e1]].source_id, m.net.forward[e1]) == ("d", False)
        assert abs(lo1 - (lr - 20.0)) < 1.0 and hi1 == lr, (dead_m, lo1, hi1)
        assert m.segments[m.net.seg[e2]].source_id == "e" and m.net.forward[e2]
        assert lo2 == 0.0 and abs(hi2 - 25.0) < 1.0


def test_with_speeds_or_seen_a_minute_apart_the_old_choice_stands() -> None:
    m = _t_junction(60.0)
    # Reported speeds: speed x time decides, and the turn-where-seen route is not one
    # of the options (at 9 m/s for 3 s, 27 m: neither fits well; no new kind).
    a, b = _step(m, 0, 20, 0.0, speed=9.0), _step(m, 25, 0, 3.0, speed=9.0)
    assert _best(m, a, b)[1] != TURN_ROUTED
    # Unseen for a minute: a vehicle that went into a dead end went to its end.
    a, b = _step(m, 0, 20, 0.0), _step(m, 25, 0, 60.0)
    assert _best(m, a, b)[1] == ROUTED


def test_a_connector_across_a_gap_is_driven_but_never_credited() -> None:
    # The through road has a 10 m gap between W-J1 and J2-E (two dead ends); a third
    # block far away is the network's last segment, which a connector misread as a
    # street (seg -1) would be credited as.
    far = _seg("far", "F1", "F2", (0, 900), (100, 900))
    m = Matcher([_seg("w", "W", "J1", (-300, 0), (-5, 0)), _seg("e", "J2", "E", (5, 0), (300, 0)),
                 far])
    assert m.net.gaps_bridged == 1
    fixes = [Ping("v", float(t), *_ll(-100 + 9.0 * t, 0.0)) for t in range(25)]
    track = m.track("v")
    out = track.push_many(fixes) + track.flush()
    assert track.stats.splits == 0 and track.stats.outliers == 0
    assert {t.source_id for t in out} == {"w", "e"}
    reach = {sid: max(t.end_m for t in out if t.source_id == sid) for sid in ("w", "e")}
    start = {sid: min(t.start_m for t in out if t.source_id == sid) for sid in ("w", "e")}
    assert reach["w"] > 294.0 and start["e"] < 1.0  # both ends of the gap reached
    off = Matcher(m.segments, MatchConfig(map_gap_m=0.0)).track("v")
    off.push_many(fixes)
    off.flush()
    assert off.stats.splits + off.stats.outliers > 0  # without it, the gap breaks the track


def _square(share: float) -> Matcher:
    """A 100 m block between a road in from the west and one out to the east: from one
    to the other, round the south side or the north side are equally short."""
    return Matcher([
        _seg("w", "W", "A", (-200, 0), (0, 0)), _seg("ab", "A", "B", (0, 0), (100, 0)),
        _seg("bc", "B", "C", (100, 0), (100, 100)), _seg("cd", "C", "D", (100, 100), (0, 100)),
        _seg("da", "D", "A", (0, 100), (0, 0)), _seg("e", "C", "E", (100, 100), (300, 100)),
        _seg("far", "F1", "F2", (0, 900), (300, 900)),
    ], MatchConfig(ambiguity_share=share))


def _across(m: Matcher) -> set[str]:
    # On the west road, then 30 s later on the east one, at 10 m/s: 300 m either way.
    fixes = [Ping("v", t, *_ll(x, y), 10.0, h, 5.0) for t, x, y, h in (
        (0.0, -90, 0, 90.0), (4.0, -50, 0, 90.0), (34.0, 150, 100, 90.0),
        (38.0, 190, 100, 90.0))]
    track = m.track("v")
    out = track.push_many(fixes) + track.flush()
    length = {s.source_id: s.length_m for s in m.segments}
    return {t.source_id for t in out if t.end_m - t.start_m > 0.9 * length[t.source_id]}


def test_between_two_equally_short_ways_the_cautious_setting_credits_neither() -> None:
    sides = {"ab", "bc", "cd", "da"}
    plain = _across(_square(0.0)) & sides
    assert plain in ({"ab", "bc"}, {"da", "cd"})  # the shortest, one of the two
    assert _across(_square(0.02)) & sides == set()
    # A block between the fixes that no other way about as short avoids is credited.
    m = Matcher([_seg("w", "W", "A", (-200, 0), (0, 0)), _seg("mid", "A", "B", (0, 0), (200, 0)),
                 _seg("e", "B", "E", (200, 0), (400, 0))], MatchConfig(ambiguity_share=0.02))
    fixes = [Ping("v", t, *_ll(x, 0), 10.0, 90.0, 5.0)
             for t, x in ((0.0, -90), (4.0, -50), (34.0, 250), (38.0, 290))]
    track = m.track("v")
    out = track.push_many(fixes) + track.flush()
    mid = sum(t.end_m - t.start_m for t in out if t.source_id == "mid")
    assert mid > 199.0


def _credited(m: Matcher, fixes: list[tuple[float, float, float, float]]) -> set[str]:
    """Blocks over 90 % driven from fixes (t, x, y, heading) at 10 m/s."""
    track = m.track("v")
    out = track.push_many([Ping("v", t, *_ll(x, y), 10.0, h, 5.0) for t, x, y, h in fixes])
    out += track.flush()
    length = {s.source_id: s.length_m for s in m.segments}
    return {t.source_id for t in out if t.end_m - t.start_m > 0.9 * length[t.source_id]}


def test_the_cautious_setting_withholds_only_where_another_way_really_is_as_short() -> None:
    cautious = MatchConfig(ambiguity_share=0.02)
    # A way round that is more than twice as long is no doubt about the block.
    m = Matcher([_seg("w", "W", "A", (-200, 0), (0, 0)), _seg("ab", "A", "B", (0, 0), (100, 0)),
                 _seg("ad", "A", "D", (0, 0), (0, 60)), _seg("dc", "D", "C", (0, 60), (100, 60)),
                 _seg("cb", "C", "B", (100, 60), (100, 0)),
                 _seg("e", "B", "E", (100, 0), (300, 0))], cautious)
    assert "ab" in _credited(m, [(0.0, -90, 0, 90.0), (4.0, -50, 0, 90.0),
                                 (24.0, 150, 0, 90.0), (28.0, 190, 0, 90.0)])
    # Two rows of 100 m blocks, the top one 3 m further out: along the bottom and up the
    # east side onto the top-right block, heading west. About as short "the other way"
    # is only along the top and onto that block from the wrong end, turning round on it:
    # a U-turn on the fix's own block is no other way (nor one back along the first).
    grid = Matcher([
        _seg("w", "W", "P0", (-200, 0), (0, 0)),
        _seg("b0", "P0", "P1", (0, 0), (100, 0)), _seg("b1", "P1", "P2", (100, 0), (200, 0)),
        _seg("t0", "Q0", "Q1", (0, 103), (100, 103)),
        _seg("t1", "Q1", "Q2", (100, 103), (200, 100)),
        _seg("v0", "P0", "Q0", (0, 0), (0, 103)), _seg("v1", "P1", "Q1", (100, 0), (100, 103)),
        _seg("v2", "P2", "Q2", (200, 0), (200, 100))], cautious)
    done = _credited(grid, [(0.0, -90, 0, 90.0), (4.0, -50, 0, 90.0),
                            (44.0, 150, 101.5, 270.0), (48.0, 110, 102.7, 270.0)])
    assert {"b0", "b1", "v2"} <= done, done
