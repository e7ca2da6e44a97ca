"""Ground truth from simulated drives (Krems, Baltimore) and real gps-truth tracks."""

from __future__ import annotations

import csv
import gzip
import json
import math
import random
from dataclasses import replace
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path

import pytest
from geo_shared_data import shared_data

from app.streets.load import load_segments
from geo.degrade import subsample
from geo.graph import StreetGraph
from geo.network import Segment, geodesic_length_m
from geo.route_truth import measured_route_truth, route_truth
from geo.simulate import SimFix, drive
from geo.truth import offset_along, serviced_ids, simulated_truth

T0 = datetime(2025, 1, 15, 4, 30, tzinfo=UTC)


@pytest.fixture(scope="module", params=["krems.osm.gz", "baltimore.osm.pbf"])
def graph(request: pytest.FixtureRequest) -> StreetGraph:
    return StreetGraph(load_segments(shared_data("osm", request.param)))


def fleet(graph: StreetGraph, interval_s: float, n: int = 3) -> dict[str, list[SimFix]]:
    # The simulator draws the same random numbers per block whatever the clock, so a
    # seed gives the same route at any interval; only the sampling differs.
    return {
        f"plow{i}": drive(
            graph, random.Random(100 + i), duration_s=3600, interval_s=interval_s, start_time=T0
        )
        for i in range(n)
    }


def test_truth_recovers_blocks_too_short_to_be_seen_at_one_second(graph: StreetGraph) -> None:
    truth = simulated_truth(graph, fleet(graph, 1.0))
    fine = fleet(graph, 0.02)  # 24 cm steps: every block of the route shows up
    seen_fine = {f.source_id for fixes in fine.values() for f in fixes}
    seen_coarse = {f.source_id for fixes in fleet(graph, 1.0).values() for f in fixes}
    assert seen_fine - seen_coarse, "test needs blocks skipped between 1 s fixes"
    # All blocks of the route, less those the drives stop on before the threshold.
    partial_ends = {fixes[-1].source_id for fixes in fine.values()}
    assert serviced_ids(truth) == seen_fine - {s for s in partial_ends if truth[s].fraction < 0.8}
    assert serviced_ids(truth) == serviced_ids(simulated_truth(graph, fine))


def test_the_block_a_drive_stops_on_counts_only_the_part_driven(graph: StreetGraph) -> None:
    coarse, fine = fleet(graph, 1.0, n=1), fleet(graph, 0.02, n=1)
    t_coarse, t_fine = simulated_truth(graph, coarse), simulated_truth(graph, fine)
    last = coarse["plow0"][-1].source_id
    assert last == fine["plow0"][-1].source_id
    length = t_coarse[last].length_m
    assert abs(t_coarse[last].fraction - t_fine[last].fraction) * length < 0.5
    # Untouched blocks exist and are plainly not serviced.
    zero = [t for t in t_coarse.values() if t.fraction == 0.0]
    assert zero and not any(t.serviced for t in zero)
    assert set(t_coarse) == {s.source_id for s in graph.segments}


def test_passes_with_the_blade_up_do_not_service(graph: StreetGraph) -> None:
    fixes = fleet(graph, 1.0, n=1)["plow0"]
    up = [replace(f, plow=False) for f in fixes]
    truth = simulated_truth(graph, {"plow0": up})
    # Only blocks crossed between two fixes keep the simulator's own rule (blade down
    # on the first pass in a direction), since no fix says otherwise for them; at
    # most 12 m of blocks fit between two fixes a second apart.
    assert serviced_ids(truth)
    assert all(truth[s].length_m < 13.0 for s in serviced_ids(truth))
    assert len(serviced_ids(truth)) < 0.1 * len(serviced_ids(simulated_truth(graph, {"p": fixes})))
    # Counting: a block plowed in both directions has two qualifying passes.
    both = simulated_truth(graph, fleet(graph, 1.0))
    assert max(t.passes for t in both.values()) >= 2


def test_truth_refuses_sparse_or_foreign_fixes(graph: StreetGraph) -> None:
    fixes = fleet(graph, 1.0, n=1)["plow0"]
    with pytest.raises(ValueError, match="dense drive"):
        simulated_truth(graph, {"v": subsample(fixes, 5)})
    with pytest.raises(ValueError, match="unknown segment"):
        simulated_truth(graph, {"v": [replace(fixes[0], source_id="nope"), *fixes[1:]]})
    with pytest.raises(ValueError, match="min_fraction"):
        simulated_truth(graph, {"v": fixes}, min_fraction=0)


# --- real tracks ---------------------------------------------------------------------


def load_track(track_id: str) -> tuple[list[Segment], set[str], list[tuple[float, float]]]:
    net: Path = shared_data("gps-truth", f"{track_id}_network.geojson.gz")
    segments = load_segments(net, id_property="arc_id", oneway_default=True)
    with gzip.open(net) as fh:
        features = json.load(fh)["features"]
    route = {
        str(f["properties"]["arc_id"]) for f in features if f["properties"]["on_ground_truth_route"]
    }
    with shared_data("gps-truth", f"{track_id}_track.csv").open() as fh:
        track = [(float(r["lon"]), float(r["lat"])) for r in csv.DictReader(fh)]
    return segments, route, track


def test_route_truth_on_a_real_track_trims_only_the_first_and_last_arc() -> None:
    segments, route, track = load_track("00000039")
    truth = route_truth(segments, route, track)
    partial = {sid for sid in route if truth[sid].fraction < 1.0}
    # The track's first fix lies inside arc 487, its last inside arc 958.
    assert partial == {"487", "958"}
    for sid in partial:
        assert 0.0 < truth[sid].fraction < 1.0
    assert all(truth[sid].serviced for sid in route - partial)
    off_route = [t for sid, t in truth.items() if sid not in route]
    assert off_route and not any(t.serviced or t.fraction for t in off_route)


def test_route_truth_on_a_round_trip_finds_its_start_and_end_arcs() -> None:
    segments, route, track = load_track("00000095")
    truth = route_truth(segments, route, track)
    partial = [sid for sid in route if truth[sid].fraction < 1.0]
    assert 1 <= len(partial) <= 2
    by_id = {s.source_id: s for s in segments}
    for sid in partial:
        seg = by_id[sid]
        near = min(
            abs(offset_along(seg.coords, seg.length_m, *end) - x)
            for end in (track[0], track[-1])
            for x in (0.0, seg.length_m)
        )
        assert near < seg.length_m  # sanity: the end fix projects inside the arc


def _straight_arc() -> Segment:
    # A real-world-sized 100 m arc due east at Bayreuth's latitude.
    lon0, lat0 = 11.58, 49.95
    dlon = 100.0 / (111_319.49 * 0.6431)
    coords = ((lon0, lat0), (lon0 + dlon, lat0))
    return Segment("a", None, "road", True, coords, geodesic_length_m(coords), 3, "p", "q")


@pytest.mark.parametrize(
    ("start_m", "expected"), [(2.0, True), (15.0, None), (50.0, False), (90.0, False)]
)
def test_partial_start_arc_is_judged_by_the_part_driven_with_an_unsure_band(
    start_m: float, expected: bool | None
) -> None:
    arc = _straight_arc()
    (lon0, lat0), (lon1, _) = arc.coords
    frac0 = start_m / arc.length_m
    track = [(lon0 + frac0 * (lon1 - lon0) + k * (lon1 - lon0) / 200, lat0) for k in range(60)]
    track = [p for p in track if p[0] <= lon1] + [(lon1 + 0.001, lat0)]
    truth = route_truth([arc], ["a"], track)
    assert truth["a"].fraction == pytest.approx(1 - frac0, abs=0.01)
    assert truth["a"].serviced is expected


# --- route truth corrected by the dense track ------------------------------------------


def timed_track(track_id: str) -> list[tuple[float, float, float]]:
    with shared_data("gps-truth", f"{track_id}_track.csv").open() as fh:
        return [(float(r["lon"]), float(r["lat"]), float(r["t_rel_s"])) for r in csv.DictReader(fh)]


def test_measured_truth_drops_the_twin_driven_the_other_way_and_keeps_dead_ends() -> None:
    segments, route, _ = load_track("00000075")
    m = measured_route_truth(segments, route, timed_track("00000075"))
    t = m.truth
    # One road, both directions labelled; the car passed once (t=1601-1618 s), in
    # 650's direction.
    assert {"276", "650"} <= route
    assert t["650"].serviced is True and t["650"].fraction == 1.0
    assert t["276"].serviced is False and t["276"].fraction < 0.05
    # A 12 m twin driven the other way is not "too close to call": the car never moved
    # along it and went straight through it backwards. Its twin was driven.
    assert t["13"].serviced is False and t["1972"].serviced is True
    # A 28 m dead end driven to its end and back (t=923-943): both directions serviced.
    assert t["489"].serviced is True and t["498"].serviced is True
    # What changed, all inspected: six twins driven one way only, and four arcs the
    # car turned round in or crossed at a junction, too close to call.
    assert m.not_driven == {"13", "276", "294", "374", "606", "1973"}
    assert m.unsure == {"427", "438", "538", "688"}
    for sid in m.not_driven:
        # The twin was driven end to end (373, where the track ends, is left out of the
        # scores by route_truth's rule for the last arc).
        twin = [s for s in route if _reverse(segments, sid, s)]
        assert twin and all(t[s].fraction == 1.0 for s in twin), sid
        assert all(t[s].serviced is (None if s == "373" else True) for s in twin), sid
    # Short arcs driven through stay certain: the unsure band is for partial drives only.
    short = {sid for sid in route if t[sid].length_m < 30.0}
    assert len(short) > 40
    assert {sid for sid in short if t[sid].serviced is None} == m.unsure | {"373"}


def test_measured_truth_counts_an_arc_turned_round_in_as_not_serviced() -> None:
    segments, route, _ = load_track("00000095")
    m = measured_route_truth(segments, route, timed_track("00000095"))
    t = m.truth
    # 44 m and 65 m arcs the car drove ~40 % and ~50 % into and back out of: both
    # directions labelled, neither serviced in one pass.
    for sid, share in {"348": 0.39, "351": 0.39, "1581": 0.49, "1599": 0.49}.items():
        assert t[sid].serviced is False, sid
        assert t[sid].fraction == pytest.approx(share, abs=0.05), sid
    # 15 m into a 19 m arc and back: within GPS error of the 80 % line.
    assert t["391"].serviced is None and t["392"].serviced is None
    assert m.not_driven == {"348", "351", "1581", "1599"} and m.unsure == {"391", "392"}


def test_measured_truth_keeps_the_label_where_the_track_has_a_gap() -> None:
    segments, route, _ = load_track("00000026")
    track = timed_track("00000026")
    m = measured_route_truth(segments, route, track)
    # Arc 476 (117 m) was crossed in a 17 s gap (no fix from t=427 to 444): the fixes
    # around it measure nothing along it, the gap could hide the whole drive.
    gap = [(a, b) for a, b in pairwise(track) if a[2] == 427.0]
    assert gap and gap[0][1][2] == 444.0
    assert "476" in route and "476" in m.kept_for_gap
    assert m.truth["476"].serviced is True
    # Nothing on this gappy track is refuted: the labels are the only truth there.
    assert not m.not_driven and not m.unsure
    assert len(m.kept_for_gap) > 100


@pytest.mark.parametrize("track_id", ["00000075", "00000095", "00000039", "00000026",
                                      "00000046", "00000048"])  # fmt: skip
def test_measured_truth_only_demotes_route_arcs(track_id: str) -> None:
    segments, route, track = load_track(track_id)
    labels = route_truth(segments, route, track)
    m = measured_route_truth(segments, route, timed_track(track_id))
    assert set(m.truth) == set(labels)
    changed = {sid for sid in labels if m.truth[sid] != labels[sid]}
    assert changed == m.not_driven | m.unsure <= route
    assert not m.not_driven & m.unsure
    for sid in changed:
        assert labels[sid].serviced is True and m.truth[sid].serviced is not True
        assert m.truth[sid].fraction < 0.8


@pytest.mark.parametrize(
    ("turn_m", "expected"), [(30, False), (70, None), (90, True), (None, True)]
)
def test_measured_truth_bands_on_a_drive_in_and_back(
    turn_m: int | None, expected: bool | None
) -> None:
    # A 100 m arc "a" due east between a lead-in "s" (and its twin "r") and an exit
    # "e", 60 m each. 1 Hz at 10 m/s with 2-3 m of jitter: in from 30 m before a's
    # start, back out once at turn_m metres along it (None: straight on into e).
    lon0, lat0 = 11.58, 49.95
    per_m = 1.0 / (111_319.49 * math.cos(math.radians(lat0)))

    def arc(sid: str, x0: float, x1: float) -> Segment:
        coords = ((lon0 + x0 * per_m, lat0), (lon0 + x1 * per_m, lat0))
        return Segment(sid, None, "road", True, coords, geodesic_length_m(coords), 3, "p", "q")

    segments = [arc("s", -60, 0), arc("r", 0, -60), arc("a", 0, 100), arc("e", 100, 160)]
    if turn_m is None:
        along, route = list(range(-30, 131, 10)), ["s", "a", "e"]
    else:
        along = [*range(-30, turn_m + 1, 10), *range(turn_m - 10, -31, -10)]
        route = ["s", "a", "r"]
    track = [(lon0 + (x + 2 * (-1) ** k) * per_m, lat0 + 3 * (-1) ** (k // 2) / 111_195, float(k))
             for k, x in enumerate(along)]  # fmt: skip
    truth = measured_route_truth(segments, route, track).truth
    assert truth["a"].serviced is expected
    # The same drive with the fixes on "a" lost in a gap long enough to hide the
    # whole arc (20 s more): nothing refutes the label.
    gapped = [(lon, lat, t + (20.0 if lon > lon0 + 100 * per_m or t > 6 else 0.0))
              for lon, lat, t in track if not lon0 < lon < lon0 + 100 * per_m]  # fmt: skip
    assert measured_route_truth(segments, route, gapped).truth["a"].serviced is True


def _reverse(segments: list[Segment], a: str, b: str) -> bool:
    by_id = {s.source_id: s for s in segments}
    return by_id[a].coords == tuple(reversed(by_id[b].coords))
