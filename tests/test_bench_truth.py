"""The coverage benchmark's real-track truth: subsamples and the stretch each one saw.

Not a benchmark (nothing here is timed): a wrong truth would make every real-track
row of BENCHMARKS.md wrong without any test noticing.
"""

from __future__ import annotations

import os
from itertools import pairwise

import pytest

from bench.coverage_rows import Track, load_track
from tests.geo.geo_shared_data import shared_data


@pytest.fixture(scope="module")
def track() -> Track:
    # Staffordshire: 21 min of 1 Hz fixes with a single 4 s gap.
    os.environ.setdefault("PLOWSHARE_SHARED_DATA", str(shared_data()))
    return load_track("00000048")


def test_every_fix_is_used_by_the_subsamples(track: Track) -> None:
    phases = list(track.phases(30))
    assert len(phases) == 30
    kept = [f.time for p in phases for f in p.fixes]
    # Each fix once up to the gap; after it each subsample's clock restarts, so some
    # fixes are taken twice and some not at all (measured: 1,189 of 1,240 used).
    assert len(kept) - len(track.fixes) <= 3
    assert len(set(kept)) >= 0.95 * len(track.fixes)
    gap = next(b.time for a, b in pairwise(track.fixes) if (b.time - a.time).seconds > 1)
    assert {f.time for f in track.fixes if f.time < gap} <= set(kept)
    for p in phases:
        steps = [(b.time - a.time).total_seconds() for a, b in pairwise(p.fixes)]
        assert all(30.0 <= s <= 33.0 for s in steps), steps


def test_one_second_is_the_whole_track_and_its_truth(track: Track) -> None:
    (only,) = track.phases(1)
    assert only.fixes == track.fixes
    assert only.measured.truth == track.measured.truth and only.labels == track.labels


def test_each_subsample_is_scored_only_on_the_drive_it_saw(track: Track) -> None:
    trimmed = 0
    phases = list(track.phases(60))
    for p in phases:
        ta, tb = p.fixes[0].time.timestamp(), p.fixes[-1].time.timestamp()
        for arc, when in track.near.items():
            truth = p.measured.truth[arc]
            inside = any(ta <= t <= tb for t in when)
            if when and not inside:
                # Driven only before the first fix or after the last: not a miss.
                assert truth.serviced is None and p.labels[arc].serviced is None, arc
                trimmed += 1
            elif truth.serviced:
                assert inside or not when, arc
    # The window bites: a minute of driving at either end lies outside some subsample.
    assert trimmed > 60
    # ... and off-route arcs stay not serviced, as in the whole track's truth.
    off = {a for a in track.measured.truth if a not in track.route}
    assert all(p.measured.truth[a].serviced is False for a in off for p in phases)
