"""Ground truth from simulated drives (Krems, Baltimore) and real gps-truth tracks."""

from __future__ import annotations

import csv
import gzip
import json
import random
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from geo_shared_data import shared_data

from app.streets.load import load_segments
from geo.degrade import subsample
from geo.graph import StreetGraph
from geo.network import Segment, geodesic_length_m
from geo.simulate import SimFix, drive
from geo.truth import offset_along, route_truth, serviced_ids, simulated_truth

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
