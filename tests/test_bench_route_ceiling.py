"""The shortest-way oracle of ``bench.route_ceiling`` (not a benchmark: nothing timed).

Its figures are quoted as the ceiling of every shortest-route matcher on the simulated
plows; they mean that only if the oracle itself is right. At one ping a second the
shortest way between the true positions is the drive itself, so it must reproduce the
simulator's truth exactly; a minute apart, some steps are driven the long way, and
those blocks are missed.
"""

from __future__ import annotations

from bench.route_ceiling import run
from tests.geo.geo_shared_data import shared_data


def test_the_oracle_is_the_truth_at_one_ping_a_second_and_short_of_it_at_sixty() -> None:
    shared_data("osm", "krems.osm.gz")  # fails, with the reason, when the data is missing
    by_interval = run("krems", 1, (1, 60), vehicles=2, duration_s=1800.0)
    dense, sparse = by_interval[1], by_interval[60]
    assert dense.tally.precision == 1.0 and dense.tally.recall == 1.0
    assert dense.longer == 0 and dense.steps == 2 * 1800
    assert sparse.steps == 2 * 30
    assert 0 < sparse.longer < sparse.steps
    assert sparse.tally.recall < 1.0
