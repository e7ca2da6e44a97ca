"""Degrading real simulated drives (Krems): sparse clocks, dropouts, outliers."""

from __future__ import annotations

import random
import statistics
from datetime import UTC, datetime, timedelta
from itertools import groupby, pairwise

import pytest
from geo_shared_data import shared_data
from pyproj import Geod

from app.streets.load import load_segments
from geo.degrade import add_outliers, drop_out, jitter_motion, on_schedule, subsample
from geo.graph import StreetGraph
from geo.simulate import SimFix, drive

GEOD = Geod(ellps="WGS84")
T0 = datetime(2025, 1, 15, 4, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def fixes() -> list[SimFix]:
    graph = StreetGraph(load_segments(shared_data("osm", "krems.osm.gz")))
    return drive(graph, random.Random(5), duration_s=6 * 3600, interval_s=1.0, start_time=T0)


def test_subsample_keeps_every_kth_fix_on_a_regular_clock(fixes: list[SimFix]) -> None:
    for every in (1, 5, 15, 30, 60):
        kept = subsample(fixes, every)
        assert kept[0] is fixes[0]
        assert all(b.time - a.time == timedelta(seconds=every) for a, b in pairwise(kept))
        assert len(kept) == (len(fixes) - 1) // every + 1


def test_subsample_restarts_its_clock_after_a_gap(fixes: list[SimFix]) -> None:
    # A tracker that loses its fix for 47 s reports again as soon as it has one.
    holed = fixes[:100] + fixes[147:300]
    kept = subsample(holed, 30)
    times = [(f.time - T0).total_seconds() for f in kept]
    assert times == [0, 30, 60, 90, 147, 177, 207, 237, 267, 297]


def test_subsample_rejects_a_non_positive_interval(fixes: list[SimFix]) -> None:
    with pytest.raises(ValueError):
        subsample(fixes, 0)


def test_independent_dropouts_lose_the_requested_share(fixes: list[SimFix]) -> None:
    kept = drop_out(fixes, random.Random(1), 0.3)
    assert abs(1 - len(kept) / len(fixes) - 0.3) < 0.02
    # Survivors are an ordered subsequence of the input, untouched.
    index = {id(f): i for i, f in enumerate(fixes)}
    positions = [index[id(f)] for f in kept]
    assert positions == sorted(positions)


def test_burst_dropouts_come_in_runs_of_the_requested_mean_length(fixes: list[SimFix]) -> None:
    kept = drop_out(fixes, random.Random(2), 0.2, burst=10)
    kept_ids = {id(f) for f in kept}
    runs = [
        len(list(group))
        for lost, group in groupby(fixes, key=lambda f: id(f) not in kept_ids)
        if lost
    ]
    assert abs(1 - len(kept) / len(fixes) - 0.2) < 0.05
    assert 8.0 < statistics.mean(runs) < 12.0
    assert max(runs) > 25  # geometric tails: some gaps a matcher has to route across


def test_dropouts_are_reproducible_and_validated(fixes: list[SimFix]) -> None:
    assert drop_out(fixes, random.Random(3), 0.1, 4) == drop_out(fixes, random.Random(3), 0.1, 4)
    assert drop_out(fixes, random.Random(3), 0.0) == fixes
    with pytest.raises(ValueError):
        drop_out(fixes, random.Random(3), 1.0)
    with pytest.raises(ValueError):
        drop_out(fixes, random.Random(3), 0.2, burst=0.5)
    with pytest.raises(ValueError):
        drop_out(fixes, random.Random(3), 0.6, burst=1)  # runs of 1 cannot lose 60 %


def test_outliers_jump_within_the_distance_band_and_keep_the_truth(
    fixes: list[SimFix],
) -> None:
    moved = add_outliers(fixes, random.Random(4), 0.05, min_m=100, max_m=400)
    assert len(moved) == len(fixes)
    jumps = []
    for before, after in zip(fixes, moved, strict=True):
        assert (after.time, after.source_id, after.forward, after.plow) == (
            before.time,
            before.source_id,
            before.forward,
            before.plow,
        )
        if (after.lon, after.lat) != (before.lon, before.lat):
            _, _, dist = GEOD.inv(before.lon, before.lat, after.lon, after.lat)
            jumps.append(dist)
    assert abs(len(jumps) / len(fixes) - 0.05) < 0.01
    assert min(jumps) >= 100 - 1e-6 and max(jumps) <= 400 + 1e-6
    assert statistics.mean(jumps) == pytest.approx(250, abs=15)


def test_outliers_never_touch_the_input_and_validate(fixes: list[SimFix]) -> None:
    snapshot = list(fixes[:50])
    assert add_outliers(fixes[:50], random.Random(6), 0.0) == snapshot
    add_outliers(fixes[:50], random.Random(6), 1.0)
    assert fixes[:50] == snapshot
    with pytest.raises(ValueError):
        add_outliers(fixes, random.Random(6), 1.5)
    with pytest.raises(ValueError):
        add_outliers(fixes, random.Random(6), 0.1, min_m=500, max_m=100)


def test_motion_jitter_spoils_speed_and_heading_only(fixes: list[SimFix]) -> None:
    jittered = jitter_motion(fixes, random.Random(8), speed_sigma_mps=0.5, heading_sigma_deg=5)
    speed_err = [b.speed_mps - a.speed_mps for a, b in zip(fixes, jittered, strict=True)]
    head_err = [
        (b.heading_deg - a.heading_deg + 180) % 360 - 180
        for a, b in zip(fixes, jittered, strict=True)
    ]
    assert statistics.pstdev(speed_err) == pytest.approx(0.5, rel=0.05)
    # Plowing speeds (8-12 m/s) are above the crawl where course errors grow.
    assert statistics.pstdev(head_err) == pytest.approx(5.0, rel=0.05)
    assert all(0 <= f.heading_deg < 360 and f.speed_mps >= 0 for f in jittered)
    assert [(f.time, f.lon, f.lat, f.source_id) for f in jittered] == [
        (f.time, f.lon, f.lat, f.source_id) for f in fixes
    ]
    with pytest.raises(ValueError):
        jitter_motion(fixes, random.Random(8), speed_sigma_mps=-1)


def test_schedules_split_the_fixes_and_never_restart_their_clock() -> None:
    # 1 Hz with a 7 s gap after t=10: each 5 s schedule sends the first fix of each of
    # its slots, so the five schedules use every fix, each once, but the first after
    # the gap: each schedule's slot that reaches into the gap falls to it.
    times = [float(t) for t in range(11)] + [float(t) for t in range(18, 30)]
    picked = [on_schedule(times, p, 5) for p in range(5)]
    assert picked[0] == [0, 5, 10, 11, 13, 18]  # t = 0, 5, 10, 18, 20, 25
    used = [times[i] for sched in picked for i in sched]
    assert set(used) == set(times)
    assert sorted(t for t in used if used.count(t) > 1) == [18.0] * 5
    with pytest.raises(ValueError):
        on_schedule(times, 0.0, 0)
