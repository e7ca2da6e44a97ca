"""The coverage benchmark's real-track truth: subsamples and the stretch each one saw.

Not a benchmark (nothing here is timed): a wrong truth would make every real-track
row of BENCHMARKS.md wrong without any test noticing.
"""

from __future__ import annotations

import pytest

from bench.coverage_rows import Track, load_track
from tests.geo.geo_shared_data import shared_data


@pytest.fixture(scope="module")
def track() -> Track:
    # Christiansburg: 15 min of fixes with many gaps (10-22 s) and arcs driven in them.
    shared_data("gps-truth")  # fails, with the reason, when the data is missing
    return load_track("00000026")


def test_schedules_split_the_fixes(track: Track) -> None:
    phases = list(track.phases(30))
    assert len(phases) == 30
    assert len({tuple(f.time for f in p.fixes) for p in phases}) == 30  # all distinct
    kept = [f.time for p in phases for f in p.fixes]
    assert set(kept) == {f.time for f in track.fixes}
    start = track.fixes[0].time.timestamp()
    for k, p in enumerate(phases):
        slots = [int((f.time.timestamp() - start - k) // 30) for f in p.fixes]
        assert slots == sorted(set(slots)), k  # at most one fix per slot, in order
    (only,) = track.phases(1)
    assert only.fixes == track.fixes


def test_each_subsample_is_scored_only_on_the_drive_it_saw(track: Track) -> None:
    left_out = agree = 0
    for p in track.phases(60):
        ta, tb = p.fixes[0].time.timestamp(), p.fixes[-1].time.timestamp()
        outside = {a for a, ts in track.near.items() if not any(ta <= t <= tb for t in ts)}
        outside |= {a for a, (t1, t2) in track.hidden.items() if not ta <= t1 < t2 <= tb}
        for a in outside:
            # Driven only before the first fix or after the last: not a miss.
            assert p.measured.truth[a].serviced is None and p.labels[a].serviced is None, a
        left_out += len(outside)
        # Arcs passed well inside the stretch are judged as on the whole track.
        for a, ts in track.near.items():
            if all(ta + 60 <= t <= tb - 60 for t in ts):
                assert p.measured.truth[a].serviced == track.measured.truth[a].serviced, a
                agree += 1
        # Off-route arcs stay not serviced, as in the whole track's truth.
        assert all(p.measured.truth[a].serviced is False
                   for a in track.measured.truth if a not in track.route)
    assert left_out > 60 and agree > 1000  # both checks bite (60 subsamples)
