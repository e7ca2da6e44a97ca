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


def test_never_turning_round_at_a_crossing_finds_more_of_the_long_ways() -> None:
    # The simulated plows turn round only at dead ends. Joined by the shortest way,
    # fixes either side of a crossing are often a turn on it; the shortest way that
    # never turns round at a crossing goes round the block, as the plow did.
    shared_data("osm", "krems.osm.gz")
    node = run("krems", 1, (1, 30), vehicles=3, duration_s=3600.0)
    edge = run("krems", 1, (1, 30), vehicles=3, duration_s=3600.0, round_=True)
    # At 1 s it is the drive, but for the odd U-turn a simulated plow makes where the
    # rest of the crossing leads out of the part of the network it stays in.
    assert edge[1].tally.precision == 1.0 and edge[1].tally.recall > 0.9995
    assert edge[30].longer < node[30].longer
    assert edge[30].tally.recall > node[30].tally.recall
