"""``bench.route_loops``: its sorting of the steps driven the long way (not timed).

Its figures are quoted as how often one detour node would recover a loop; that holds
only if every such step is sorted once and the route it rebuilds can match the drive.
"""

from __future__ import annotations

from bench.route_loops import sort_steps
from tests.geo.geo_shared_data import shared_data


def test_every_long_way_step_is_sorted_once_and_some_loops_are_found() -> None:
    shared_data("osm", "krems.osm.gz")  # fails, with the reason, when the data is missing
    tally = sort_steps("krems", 1, 30, vehicles=2, duration_s=1800.0)
    kinds = ("one: the driven one", "one: another", "several", "none")
    assert set(tally) <= {"driven the long way", *kinds}
    assert tally["driven the long way"] > 0
    assert sum(tally[k] for k in kinds) == tally["driven the long way"]
    assert tally["one: the driven one"] > 0
