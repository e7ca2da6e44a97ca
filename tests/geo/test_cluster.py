"""Which fixes become steps: sparse position-only fixes back near the last step."""

from __future__ import annotations

from test_match_support import krems

from geo.cluster import Clusterer, Seed
from geo.match import Ping
from geo.track import TrackStats


def feed(moves: list[tuple[float, float]], every_s: float = 15.0) -> list[Seed]:
    """Speedless fixes at planar (x, y) metres, ``every_s`` apart; closed clusters."""
    clusters = Clusterer(krems().matcher, TrackStats())
    seeds: list[Seed] = []
    for k, (x, y) in enumerate(moves):
        seeds += clusters.add(Ping("v", 1000.0 + k * every_s, 0.0, 0.0), x, y, False)
    return seeds + clusters.close()


def test_a_loop_back_to_the_last_fix_is_a_step_of_its_own() -> None:
    # Into a dead end and out again between two fixes: the second lands beside the
    # first, and the third shows the vehicle is driving, so the second was not noise.
    seeds = feed([(0.0, 0.0), (6.0, 4.0), (150.0, 0.0), (300.0, 0.0)])
    assert [round(s.x) for s in seeds] == [0, 6, 150, 300]


def test_fixes_that_stay_together_are_one_standing_step() -> None:
    # Each near fix is confirmed by the next; only the last one before the vehicle
    # leaves cannot be told from a loop, and stays a step of its own.
    seeds = feed([(0.0, 0.0), (6.0, 4.0), (-3.0, 5.0), (1.0, 1.0), (4.0, -6.0),
                  (2.0, 2.0), (150.0, 0.0)])
    assert [(round(s.x, 6), round(s.y, 6)) for s in seeds] == [(1.6, 0.8), (2.0, 2.0),
                                                                (150.0, 0.0)]


def test_a_last_fix_back_near_the_step_adds_no_movement() -> None:
    # Nothing came after it to say the vehicle drove: it joins the standing step.
    seeds = feed([(0.0, 0.0), (150.0, 0.0), (154.0, 3.0)])
    assert len(seeds) == 2 and abs(seeds[1].x - 152.0) < 1e-9


def test_fixes_that_march_away_each_confirm_the_last() -> None:
    # A car pulls away from where it stood, fixes 3 s and 45-50 m apart: none is near
    # another, but each carries on the same way out, so each is a step of its own.
    seeds = feed([(0.0, 0.0), (2.0, 1.0), (-2.0, 1.0), (0.0, -2.0), (45.0, 0.0),
                  (95.0, 2.0), (140.0, 0.0), (146.0, 1.0)], every_s=3.0)
    assert [round(s.x) for s in seeds] == [0, 45, 95, 143]


def test_far_fixes_that_scatter_are_jitter_of_the_standing_step() -> None:
    # Two far fixes in a row, but the second no further on from the first: noise.
    seeds = feed([(0.0, 0.0), (2.0, 1.0), (-2.0, 1.0), (0.0, -2.0), (40.0, 0.0),
                  (0.0, 40.0), (1.0, 1.0), (-1.0, 0.0)], every_s=3.0)
    assert len(seeds) == 1 and abs(seeds[0].x - 5.0) < 1e-9
