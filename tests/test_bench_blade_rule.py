"""The benchmark's blade rule for the baseline's paths (``bench.blade_rule``).

Not a benchmark: if this rule were wrong, every "never below fastmm" verdict of
BENCHMARKS.md would compare the engines under different rules without a test noticing.
"""

from __future__ import annotations

import pytest

from bench.blade_rule import blade_pieces
from geo.emit import Cleared, Piece

# a's block (50 m driven), three whole 100 m blocks, b's block (50 m driven)
ROUTE: list[Piece] = [(0, 50.0, 100.0), (1, 0.0, 100.0), (2, 0.0, 100.0), (3, 0.0, 100.0),
                      (4, 0.0, 50.0)]
T = 10_000.0


def length(_edge: int) -> float:
    return 100.0


def cleared_before(*edges: int) -> Cleared:
    c = Cleared()
    for e in edges:
        c.add(e, 0.0, 100.0, 100.0, T - 600.0)  # plowed by this vehicle 10 min ago
    return c


def down_metres(pieces: list[tuple[int, float, float, bool]]) -> float:
    return sum(hi - lo for _, lo, hi, down in pieces if down)


def test_pings_that_agree_give_the_whole_step_their_state() -> None:
    for down in (True, False):
        for rule in ("placed", "either"):
            out = blade_pieces(ROUTE, down, down, T, T + 40, Cleared(), length, rule)
            assert [(e, lo, hi) for e, lo, hi, _ in out] == ROUTE
            assert {d for *_, d in out} == {down}


def test_placed_goes_up_where_the_route_reaches_streets_the_vehicle_cleared() -> None:
    # Blade down at a, up at b; blocks 3 and 4 cleared already: up at block 3.
    out = blade_pieces(ROUTE, True, False, T, T + 40, cleared_before(3, 4), length)
    assert [(e, d) for e, _, _, d in out] == [(0, True), (1, True), (2, True), (3, False),
                                              (4, False)]
    # Down at a, up at b; nothing of the route cleared: the crossing nearest half-way.
    out = blade_pieces(ROUTE, True, False, T, T + 40, Cleared(), length)
    assert down_metres(out) in (150.0, 250.0)
    # One block: its middle, split there.
    out = blade_pieces([(7, 0.0, 80.0)], False, True, T, T + 10, cleared_before(7), length)
    assert out == [(7, 0.0, 40.0, False), (7, 40.0, 80.0, True)]


def test_either_credits_the_whole_step_when_one_ping_had_the_blade_down() -> None:
    for a, b in ((True, False), (False, True)):
        out = blade_pieces(ROUTE, a, b, T, T + 40, cleared_before(3, 4), length, "either")
        assert down_metres(out) == 400.0


def test_the_blade_down_part_is_what_the_vehicle_cleared_next() -> None:
    # Up at a, down at b, nothing known: the blocks after the switch are cleared now
    # (at b's time), those before are not; the next step reads them.
    cleared = Cleared()
    out = blade_pieces(ROUTE, False, True, T, T + 40, cleared, length)
    assert 0 < down_metres(out) < 400.0
    assert set(cleared.at) == {e for e, lo, hi, down in out if down and hi - lo >= 50.0}
    assert set(cleared.at.values()) == {T + 40}
    # Driving back over them with the blade going up: it goes up where they begin.
    back = [(e, 0.0, 100.0) for e in (9, *sorted(cleared.at))]
    out = blade_pieces(back, True, False, T + 50, T + 90, cleared, length)
    assert [(e, d) for e, _, _, d in out] == [(9, True)] + [(e, False) for e, *_ in back[1:]]


def test_a_ping_without_a_blade_reading_is_read_as_plowshare_reads_it() -> None:
    # No sensor at a, blade up at b: plowing (no sensor) up to half-way, as
    # geo.emit.traversals reads it; with both blades known the cleared blocks 1-4
    # would put the change right after a's block (50 m).
    cleared = cleared_before(1, 2, 3, 4)
    out = blade_pieces(ROUTE, None, False, T, T + 40, cleared, length)
    assert down_metres(out) in (150.0, 250.0)
    assert down_metres(blade_pieces(ROUTE, True, False, T, T + 40,
                                    cleared_before(1, 2, 3, 4), length)) == 50.0
    # No sensor at either ping: all of it is plowing, and nothing is marked cleared.
    out = blade_pieces(ROUTE, None, None, T, T + 40, cleared, length)
    assert down_metres(out) == 400.0
    assert set(cleared.at.values()) == {T - 600.0}


def test_an_unknown_rule_is_refused() -> None:
    with pytest.raises(ValueError, match="blade rule"):
        blade_pieces(ROUTE, True, False, T, T + 40, Cleared(), length, "generous")
