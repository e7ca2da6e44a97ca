"""The online Track API: fixed-lag output, bad input handled, gaps and outliers."""

from __future__ import annotations

import random
from itertools import pairwise

from pyproj import Geod
from test_match_support import T0, Drive, cover, krems, pings, sample, serviced, straight_on

from geo.match import MatchConfig, Matcher, Ping, Traversal

GEOD = Geod(ellps="WGS84")


def drive_fixes(blocks: int = 5, interval: float = 1.0, seed: int = 1) -> list[Ping]:
    net = krems()
    path = straight_on(net, net.edge("w24980487:1", False), blocks)
    return pings(sample(Drive.along(path), interval_s=interval), random.Random(seed))


def run(fixes: list[Ping], matcher: Matcher | None = None) -> list[Traversal]:
    m = matcher or krems().matcher
    track = m.track("plow-1")
    out: list[Traversal] = []
    for p in fixes:
        out += track.push(p)
    return out + track.flush()


def test_traversals_come_out_while_driving_not_only_at_flush() -> None:
    fixes = drive_fixes()
    track = krems().matcher.track("plow-1")
    early: list[Traversal] = []
    for p in fixes:
        early += track.push(p)
    late = track.flush()
    assert early and late
    # Final within a short lag: by the last fix, all but its last few seconds are out.
    assert max(t.t_end for t in early) >= fixes[-1].t - 20.0


def test_traversals_are_well_formed_and_in_time_order() -> None:
    net = krems()
    lengths = {s.source_id: s.length_m for s in net.segments}
    out = run(drive_fixes(interval=5.0))
    assert out
    for t in out:
        assert 0.0 <= t.start_m < t.end_m <= lengths[t.source_id] + 1e-9
        assert t.t_start <= t.t_end
        assert 0.0 <= t.confidence <= 1.0
        assert t.vehicle == "plow-1"
    assert all(a.t_end <= b.t_start + 1e-9 for a, b in pairwise(out))


def test_push_one_by_one_equals_push_many() -> None:
    fixes = drive_fixes(interval=2.0)
    track = krems().matcher.track("plow-1")
    assert run(fixes) == track.push_many(fixes) + track.flush()


def test_stale_duplicate_and_foreign_fixes_are_ignored_and_counted() -> None:
    fixes = drive_fixes(interval=1.0)
    clean = run(fixes)
    messy = list(fixes)
    messy.insert(10, fixes[3])  # an old fix arriving late
    messy.insert(20, fixes[18])  # a duplicate
    messy.insert(30, Ping("other", fixes[28].t + 0.5, fixes[0].lon, fixes[0].lat))
    messy.insert(40, Ping("plow-1", fixes[38].t + 0.5, float("nan"), fixes[0].lat))
    track = krems().matcher.track("plow-1")
    out: list[Traversal] = []
    for p in messy:
        out += track.push(p)
    assert out + track.flush() == clean
    s = track.stats
    assert (s.stale, s.foreign, s.invalid, s.pings) == (2, 1, 1, len(messy))


def test_a_long_silence_splits_the_track_and_credits_nothing_across_it() -> None:
    net = krems()
    path = straight_on(net, net.edge("w24980487:1", False), 6)
    drive = Drive.along(path)
    first = sample(drive, stop_m=path[0].length_m * 0.5, interval_s=2.0)
    resume_m = sum(e.length_m for e in path[:4]) + 10.0
    # Five minutes of silence while the truck drives on three blocks (and parks).
    second = sample(drive, start_m=resume_m, interval_s=2.0, t0=first[-1][0] + 300.0)
    track = net.matcher.track("plow-1")
    out = track.push_many(pings(first + second, random.Random(4))) + track.flush()
    assert track.stats.splits == 1
    gap = (first[-1][0], second[0][0])
    assert not [t for t in out if t.t_start < gap[1] - 1e-6 and t.t_end > gap[0] + 1e-6]
    assert not {t.source_id for t in out} & {e.source_id for e in path[1:3]}


def test_a_wild_fix_is_skipped_without_breaking_the_chain() -> None:
    fixes = drive_fixes(interval=5.0, seed=2)
    k = len(fixes) // 2
    lon, lat, _ = GEOD.fwd(fixes[k].lon, fixes[k].lat, 0.0, 400.0)  # 400 m north
    wild = [*fixes[:k], Ping("plow-1", fixes[k].t, float(lon), float(lat),
                             fixes[k].speed_mps, fixes[k].heading_deg, fixes[k].accuracy_m),
            *fixes[k + 1:]]
    net = krems()
    assert serviced(cover(net, wild)[0]) == serviced(cover(net, fixes)[0])


def test_config_is_used_for_gaps() -> None:
    fixes = drive_fixes(interval=30.0)[:-1]  # the last is the end of the drive, sooner
    assert [round(b.t - a.t) for a, b in pairwise(fixes)] == [30] * (len(fixes) - 1)
    m = Matcher(krems().segments, MatchConfig(max_gap_s=20.0))
    track = m.track("plow-1")
    out = track.push_many(fixes) + track.flush()
    assert out == [] and track.stats.splits == len(fixes) - 1
    assert fixes[0].t == T0


def test_fixes_jumping_about_the_town_split_often_and_stay_well_formed() -> None:
    # A broken tracker: a random walk with a jump anywhere in Krems every third fix
    # or so. Splits then come again and again, and each may re-decide the pending
    # steps before it (geo.track.Track._split_at); what comes out must still be whole
    # traversals in time order, and the matcher must come back from every one.
    net = krems()
    lengths = {s.source_id: s.length_m for s in net.segments}
    lons = [c[0] for s in net.segments for c in s.coords]
    lats = [c[1] for s in net.segments for c in s.coords]
    for seed in range(3):
        rng = random.Random(seed)
        lon, lat, t = rng.uniform(min(lons), max(lons)), rng.uniform(min(lats), max(lats)), T0
        fixes = []
        for _ in range(300):
            t += rng.choice([1.0, 1.0, 2.0, 5.0, 15.0, 30.0])
            if rng.random() < 0.3:
                lon, lat = rng.uniform(min(lons), max(lons)), rng.uniform(min(lats), max(lats))
            else:
                lon, lat = lon + rng.gauss(0.0, 3e-4), lat + rng.gauss(0.0, 2e-4)
            fixes.append(Ping("plow-1", t, lon, lat, rng.choice([None, rng.uniform(0, 15)])))
        track = net.matcher.track("plow-1")
        out = [tv for p in fixes for tv in track.push(p)] + track.flush()
        assert track.stats.splits >= 2, seed
        assert out, seed
        for tv in out:
            assert 0.0 <= tv.start_m < tv.end_m <= lengths[tv.source_id] + 1e-9, (seed, tv)
            assert T0 < tv.t_start <= tv.t_end <= t, (seed, tv)
        assert all(a.t_end <= b.t_start + 1e-9 for a, b in pairwise(out)), seed
