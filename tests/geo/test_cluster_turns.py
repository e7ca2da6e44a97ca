"""Dense position-only fixes (a phone, a car's 1 Hz logger): where a drive turns and ends.

On a plane network of exactly known lengths. Without reported speeds the clusterer
joins fixes until the vehicle is clearly elsewhere (2.5 sigma: 25 m for fixes that
report no accuracy), so whatever happens within that reach happens inside one
cluster: a poke into a short dead end and out, or the last metres before the fixes
stop. Both used to vanish into a cluster's mean (real track 00000075's 24 m dead end
at 1 s; the last 11 m block of 00000026).
"""

from __future__ import annotations

import math
import random
from itertools import pairwise

from test_transition_turns import _ll, _seg

from geo.cluster import Clusterer, Seed
from geo.coverage import CoverageBook
from geo.match import Matcher, Ping, Traversal
from geo.track import TrackStats


def _drive(points: list[tuple[float, float]], seed: int, speed: float = 5.0) -> list[Ping]:
    """Speedless 1 Hz fixes along straight legs through ``points`` (plane metres).

    GPS error as a car's logger has it: an offset of a few metres that drifts slowly
    (correlated over about a minute), and well under a metre from one fix to the next.
    """
    rng = random.Random(seed)
    ex, ey = rng.gauss(0, 3.0), rng.gauss(0, 3.0)
    out: list[Ping] = []
    t = 0.0
    carry = 0.0

    def fix(x: float, y: float) -> None:
        nonlocal ex, ey, t
        ex = 0.98 * ex + rng.gauss(0, 0.6)
        ey = 0.98 * ey + rng.gauss(0, 0.6)
        out.append(Ping("v", t, *_ll(x + ex + rng.gauss(0, 0.5), y + ey + rng.gauss(0, 0.5))))
        t += 1.0

    for (x0, y0), (x1, y1) in pairwise(points):
        leg = math.dist((x0, y0), (x1, y1))
        d = carry
        while d < leg:
            f = d / leg
            fix(x0 + f * (x1 - x0), y0 + f * (y1 - y0))
            d += speed
        carry = d - leg
    fix(*points[-1])
    return out


def _run(m: Matcher, fixes: list[Ping]) -> tuple[list[Traversal], int]:
    track = m.track("v")
    out = track.push_many(fixes) + track.flush()
    return out, track.stats.turns_back


def _serviced(m: Matcher, fixes: list[Ping]) -> tuple[set[str], int]:
    out, turns = _run(m, fixes)
    book = CoverageBook(m.segments)
    book.add(out)
    return {sid for sid, c in book.result().items() if c.covered}, turns


def _t_junction(dead_m: float) -> Matcher:
    return Matcher([_seg("w", "W", "J", (-200, 0), (0, 0)), _seg("e", "J", "E", (0, 0), (200, 0)),
                    _seg("d", "J", "D", (0, 0), (0, dead_m))])


def test_a_poke_into_a_short_dead_end_and_out_services_it() -> None:
    m = _t_junction(24.0)
    for seed in range(6):
        # 4 m/s (15 km/h) into the dead end and out, as a car noses into one.
        fixes = _drive([(-200, 0), (0, 0), (0, 24), (0, 0), (200, 0)], seed, 4.0)
        done, turns = _serviced(m, fixes)
        assert done == {"w", "e", "d"}, (seed, done)
        assert turns >= 1, seed


def test_turned_half_way_into_a_dead_end_it_is_not_serviced() -> None:
    m = _t_junction(60.0)
    for seed in range(6):
        fixes = _drive([(-200, 0), (0, 0), (0, 24), (0, 0), (200, 0)], seed, 4.0)
        done, _ = _serviced(m, fixes)
        assert done == {"w", "e"}, (seed, done)


def test_the_last_block_before_the_fixes_stop_is_driven_to_where_they_stop() -> None:
    # w (200 m), then s, a block of 12 m, then f: the drive ends at the end of s. The
    # GPS error moves the last fix a few metres along s, so the test asks for what the
    # fixes can show: s driven up to where its last fix lies.
    m = Matcher([_seg("w", "W", "J", (-200, 0), (0, 0)), _seg("s", "J", "K", (0, 0), (12, 0)),
                 _seg("f", "K", "F", (12, 0), (200, 0))])
    for seed in range(6):
        fixes = _drive([(-200, 0), (12, 0)], seed)
        out, _ = _run(m, fixes)
        (x,), _ = m.proj.to_xy([fixes[-1].lon], [fixes[-1].lat])
        (j,), _ = m.proj.to_xy([_ll(0, 0)[0]], [_ll(0, 0)[1]])
        last = min(max(float(x - j), 0.0), 12.0)  # the last fix along s, in metres
        reach = max((t.end_m for t in out if t.source_id == "s"), default=0.0)
        assert reach >= last - 0.5, (seed, reach, last)


def test_a_car_standing_at_a_dead_end_turns_nothing_back() -> None:
    # Ten minutes 10 m into the dead end, fixes each second: with 3 m i.i.d. jitter,
    # and with the slowly drifting error of a car's logger (as the drives above have).
    m = _t_junction(24.0)
    for seed in range(4):
        rng = random.Random(seed)
        jitter = [Ping("v", float(t), *_ll(rng.gauss(0, 3.0), 10 + rng.gauss(0, 3.0)))
                  for t in range(600)]
        drift = []
        ex = ey = 0.0
        for t in range(600):
            ex, ey = 0.98 * ex + rng.gauss(0, 0.6), 0.98 * ey + rng.gauss(0, 0.6)
            drift.append(Ping("v", float(t), *_ll(ex + rng.gauss(0, 0.5),
                                                  10 + ey + rng.gauss(0, 0.5))))
        for fixes in (jitter, drift):
            done, turns = _serviced(m, fixes)
            assert done == set() and turns == 0, (seed, done, turns)


def test_no_fix_becomes_two_identical_steps() -> None:
    # Driving on in a straight run; the last fix alone starts a new cluster (the blade
    # went down there). It is a step already; the end must not add it once more.
    m = _t_junction(24.0)
    clusters = Clusterer(m, TrackStats())
    seeds: list[Seed] = []
    for k in range(12):
        seeds += clusters.add(Ping("v", float(k), 0.0, 0.0, plow=k == 11), -150 + 5.0 * k,
                              0.0, False)
    seeds += clusters.end()
    assert seeds[-1].x == -95.0 and seeds[-1].first_fix == seeds[-1].last_fix == 11.0
    assert len({(s.x, s.y, s.t) for s in seeds}) == len(seeds), seeds
