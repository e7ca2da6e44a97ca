"""Where a blade change between two fixes is put (``geo.emit._switch_point``)."""

from __future__ import annotations

from geo.emit import Cleared, Piece, _switch_point

# a's block (50 m driven), three whole 100 m blocks, b's block (50 m driven)
ROUTE: list[Piece] = [(0, 50.0, 100.0), (1, 0.0, 100.0), (2, 0.0, 100.0), (3, 0.0, 100.0),
                      (4, 0.0, 50.0)]
TOTAL = 400.0


def test_with_nothing_to_go_by_the_change_is_at_the_intersection_nearest_half_way() -> None:
    assert _switch_point(ROUTE, TOTAL, None, set()) in (150.0, 250.0)
    assert _switch_point([(0, 10.0, 90.0)], 80.0, True, {0}) == 40.0  # one block: middle


def test_blade_goes_up_where_the_route_reaches_streets_the_vehicle_already_cleared() -> None:
    assert _switch_point(ROUTE, TOTAL, True, {3}) == 250.0
    assert _switch_point(ROUTE, TOTAL, True, {1, 2, 3}) == 50.0


def test_blade_goes_down_where_the_route_leaves_streets_the_vehicle_already_cleared() -> None:
    assert _switch_point(ROUTE, TOTAL, False, {1}) == 150.0
    assert _switch_point(ROUTE, TOTAL, False, {1, 2, 3}) == 350.0


def test_mixed_evidence_misreads_the_fewest_metres() -> None:
    # Blade up at b: block 1 cleared, 2 and 3 not. Up after a's block misreads 200 m
    # (2, 3 fresh but up); up after block 3 misreads 100 m (1 cleared but down).
    assert _switch_point(ROUTE, TOTAL, True, {1}) == 350.0


def test_a_street_is_cleared_by_one_run_over_most_of_it_not_by_nosing_in() -> None:
    c = Cleared()
    c.add(7, 0.0, 30.0, 100.0, 1.0)  # nosed in 30 m
    c.add(7, 0.0, 30.0, 100.0, 2.0)  # and again: not one run
    assert 7 not in c.at
    c.add(7, 30.0, 60.0, 100.0, 3.0)  # crossed over two fixes: 30 + 30 m
    assert c.at[7] == 3.0
