"""``plowshare coverage`` run for real on real streets: OSM and GeoJSON files, real and
simulated pings, bad rows and broken inputs."""

from __future__ import annotations

import csv
import gzip
import json
import random
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from app.offline_coverage import main, parse_time
from app.sim_csv import write_pings_csv
from app.sim_offline import simulate_fleet
from app.streets.load import load_segments
from geo.graph import StreetGraph
from geo.route_truth import route_truth
from geo.simulate import add_noise
from geo.truth import simulated_truth
from tests.geo.geo_shared_data import shared_data

REPO = Path(__file__).resolve().parents[1]
OUT_HEADER = [
    "segment_id",
    "covered",
    "covered_fraction",
    "passes",
    "first_service",
    "last_service",
]
T0 = datetime(2025, 1, 15, 4, 0, tzinfo=UTC)


def run_cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """The CLI as a user runs it: a separate interpreter, from the repository root."""
    return subprocess.run(
        [sys.executable, "-m", "app.offline_coverage", *map(str, args)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
    )


def read_out(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        assert reader.fieldnames == OUT_HEADER
        return list(reader)


def weighted_scores(
    covered: set[str], truth: set[str], length: dict[str, float], ignore: set[str] = frozenset()
) -> tuple[float, float]:
    covered, truth = covered - ignore, truth - ignore
    hit = sum(length[s] for s in covered & truth)
    return hit / max(sum(length[s] for s in covered), 1e-9), hit / sum(length[s] for s in truth)


# --- a real car track on a GeoJSON segment file ---------------------------------------


def write_track_inputs(tmp_path: Path, track_id: str) -> tuple[Path, Path, dict[str, Any]]:
    """Segment GeoJSON (ids our own) and PINGS.csv from one gps-truth track."""
    with gzip.open(shared_data("gps-truth", f"{track_id}_network.geojson.gz")) as fh:
        arcs = json.load(fh)["features"]
    features: list[dict[str, Any]] = []
    route: set[str] = set()
    for k, arc in enumerate(arcs):
        sid = f"arc-{arc['properties']['arc_id']}"
        if arc["properties"]["on_ground_truth_route"]:
            route.add(sid)
        props: dict[str, Any] = {"highway": "residential", "oneway": "yes"}
        feature: dict[str, Any] = {"type": "Feature", "geometry": arc["geometry"]}
        # Both places a segment id may live: the feature id and an ``id`` property.
        if k % 2:
            feature["id"] = sid
        else:
            props["id"] = sid
        feature["properties"] = props
        features.append(feature)
    streets = tmp_path / "arcs.geojson"
    streets.write_text(json.dumps({"type": "FeatureCollection", "features": features}))

    with shared_data("gps-truth", f"{track_id}_track.csv").open() as fh:
        track = list(csv.DictReader(fh))
    rows = []
    for k, r in enumerate(track):
        when = T0 + timedelta(seconds=float(r["t_rel_s"]))
        # Both time spellings the contract allows, mixed in one file.
        stamp = when.strftime("%Y-%m-%dT%H:%M:%SZ") if k % 3 else f"{when.timestamp():.3f}"
        rows.append(["car", stamp, r["lat"], r["lon"]])
    random.Random(1).shuffle(rows)  # rows in any order
    pings = tmp_path / "pings.csv"
    with pings.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["vehicle_id", "time", "lat", "lon"])
        out.writerows(rows)
    lonlat = [(float(r["lon"]), float(r["lat"])) for r in track]
    return streets, pings, {"route": route, "track": lonlat}


def test_geojson_segments_keep_their_ids_and_a_real_track_covers_its_route(
    tmp_path: Path,
) -> None:
    streets, pings, info = write_track_inputs(tmp_path, "00000075")
    out = tmp_path / "coverage.csv"
    done = run_cli("--streets", streets, "--pings", pings, "--out", out)
    assert done.returncode == 0, done.stderr
    rows = read_out(out)
    segments = load_segments(streets)
    assert [r["segment_id"] for r in rows] == [s.source_id for s in segments]
    assert {r["segment_id"] for r in rows} == {f"arc-{i}" for i in range(2124)}

    truth = route_truth(segments, info["route"], info["track"])
    length = {s.source_id: s.length_m for s in segments}
    covered = {r["segment_id"] for r in rows if r["covered"] == "1"}
    unsure = {s for s, t in truth.items() if t.serviced is None}
    served = {s for s, t in truth.items() if t.serviced}
    precision, recall = weighted_scores(covered, served, length, unsure)
    # Wiring, not quality (bench/coverage.py measures that): lost ids, swapped
    # lat/lon or misread times would cover nothing or the wrong streets.
    assert precision >= 0.95 and recall >= 0.6, (precision, recall)

    start, end = T0.timestamp(), T0.timestamp() + 27 * 60 + 60
    for r in rows:
        assert r["covered"] in ("0", "1")
        fraction = float(r["covered_fraction"])
        assert 0.0 <= fraction <= 1.0 and len(r["covered_fraction"].split(".")[1]) in (3, 4)
        if r["covered"] == "1":
            assert int(r["passes"]) >= 1
            first, last = parse_time(r["first_service"]), parse_time(r["last_service"])
            assert r["first_service"].endswith("Z") and r["last_service"].endswith("Z")
            assert start <= first <= last <= end
        if r["first_service"] == "":
            assert r["last_service"] == "" and r["covered"] == "0"


# --- simulated plows on an OSM file ---------------------------------------------------


@pytest.fixture(scope="module")
def krems() -> dict[str, Any]:
    path = shared_data("osm", "krems.osm.gz")
    graph = StreetGraph(load_segments(path))
    dense, sparse = simulate_fleet(graph, vehicles=2, duration_s=1800, interval_s=5, seed=7)
    noisy = {v: add_noise(f, random.Random(v), 5.0) for v, f in sparse.items()}
    return {
        "path": path,
        "graph": graph,
        "truth": simulated_truth(graph, dense),
        "pings": noisy,
    }


def test_osm_streets_with_simulated_plows_match_the_truth(
    krems: dict[str, Any], tmp_path: Path
) -> None:
    pings = tmp_path / "pings.csv"
    write_pings_csv(krems["pings"], pings)
    out = tmp_path / "coverage.csv"
    done = run_cli("--streets", krems["path"], "--pings", pings, "--out", out)
    assert done.returncode == 0, done.stderr
    rows = read_out(out)
    graph: StreetGraph = krems["graph"]
    assert [r["segment_id"] for r in rows] == [s.source_id for s in graph.segments]
    length = {s.source_id: s.length_m for s in graph.segments}
    covered = {r["segment_id"] for r in rows if r["covered"] == "1"}
    served = {s for s, t in krems["truth"].items() if t.serviced}
    precision, recall = weighted_scores(covered, served, length)
    assert precision >= 0.95 and recall >= 0.9, (precision, recall)
    assert "2 vehicles" in done.stderr


def test_a_stricter_min_fraction_never_covers_more(krems: dict[str, Any], tmp_path: Path) -> None:
    pings = tmp_path / "pings.csv"
    write_pings_csv(krems["pings"], pings)
    loose, strict = tmp_path / "loose.csv", tmp_path / "strict.csv"
    assert main(["--streets", str(krems["path"]), "--pings", str(pings), "--out", str(loose),
                 "--min-fraction", "0.3"]) == 0  # fmt: skip
    assert main(["--streets", str(krems["path"]), "--pings", str(pings), "--out", str(strict),
                 "--min-fraction", "0.99"]) == 0  # fmt: skip
    n_loose = sum(r["covered"] == "1" for r in read_out(loose))
    n_strict = sum(r["covered"] == "1" for r in read_out(strict))
    assert n_strict <= n_loose


# --- bad rows and broken inputs -------------------------------------------------------

BAD_ROWS = [
    ("plow01,yesterday,48.41,15.60,9.0,90,1", "bad time"),
    ("plow01,2025-01-15T04:10:00Z,95.0,15.60,9.0,90,1", "lat"),
    ("plow01,2025-01-15T04:10:00Z,48.41", "fields"),
    (",2025-01-15T04:10:00Z,48.41,15.60,9.0,90,1", "vehicle_id"),
    ("plow02,2025-01-15T04:10:00Z,48.41,15.60,9.0,90,maybe", "plow"),
    ("plow02,2025-01-15T04:10:00Z,48.41,nan,9.0,90,1", "lon"),
    ("plow02,1736913600000,48.41,15.60,9.0,90,1", "milliseconds"),
    ("plow02,2025-01-15T04:10:00Z,48.41,15.60,-3,90,1", "speed"),
]


def test_bad_rows_are_reported_by_line_and_the_good_rows_still_count(
    krems: dict[str, Any], tmp_path: Path
) -> None:
    clean = tmp_path / "clean.csv"
    write_pings_csv(krems["pings"], clean)
    lines = clean.read_text().splitlines()
    # Interleave the bad rows through the file at known line numbers (1 = header).
    dirty_lines = list(lines)
    expected: dict[int, str] = {}
    for k, (row, why) in enumerate(BAD_ROWS):
        at = 5 + k * 40  # 0-based index into dirty_lines
        dirty_lines.insert(at, row)
        expected[at + 1] = why
    dirty = tmp_path / "dirty.csv"
    dirty.write_text("\n".join(dirty_lines) + "\n")
    assert [i + 1 for i, r in enumerate(dirty_lines) if r in dict(BAD_ROWS)] == sorted(expected)

    out_clean, out_dirty = tmp_path / "clean_cov.csv", tmp_path / "dirty_cov.csv"
    assert run_cli("--streets", krems["path"], "--pings", clean, "--out", out_clean).returncode == 0
    done = run_cli("--streets", krems["path"], "--pings", dirty, "--out", out_dirty)
    assert done.returncode == 0, done.stderr
    reported = [ln for ln in done.stderr.splitlines() if "row skipped" in ln]
    assert len(reported) == len(BAD_ROWS)
    for (line, why), message in zip(sorted(expected.items()), reported, strict=True):
        assert message.startswith(f"{dirty}:{line}: "), message
        assert why in message, message
    assert f"{len(BAD_ROWS)} bad rows skipped" in done.stderr
    # Every good row still counted: the coverage is exactly that of the clean file.
    assert out_dirty.read_text() == out_clean.read_text()
    assert any(r["covered"] == "1" for r in read_out(out_dirty))


def test_a_missing_required_column_is_exit_2_with_its_name(
    krems: dict[str, Any], tmp_path: Path
) -> None:
    pings = tmp_path / "pings.csv"
    pings.write_text("vehicle_id,timestamp,lat,lon\nplow01,2025-01-15T04:00:00Z,48.41,15.6\n")
    out = tmp_path / "coverage.csv"
    done = run_cli("--streets", krems["path"], "--pings", pings, "--out", out)
    assert done.returncode == 2
    assert "missing required column(s) time" in done.stderr
    assert not out.exists()


@pytest.mark.parametrize("which", ["streets", "pings"])
def test_a_missing_file_is_exit_2(krems: dict[str, Any], tmp_path: Path, which: str) -> None:
    pings = tmp_path / "pings.csv"
    write_pings_csv(krems["pings"], pings)
    args = {"streets": krems["path"], "pings": pings}
    args[which] = tmp_path / "nope" / f"missing-{which}.csv"
    out = tmp_path / "coverage.csv"
    done = run_cli("--streets", args["streets"], "--pings", args["pings"], "--out", out)
    assert done.returncode == 2
    assert f"{which} file" in done.stderr and "not found" in done.stderr
    assert "Traceback" not in done.stderr
    assert not out.exists()


def test_bad_arguments_and_unreadable_streets_are_exit_2(tmp_path: Path) -> None:
    pings = tmp_path / "pings.csv"
    pings.write_text("vehicle_id,time,lat,lon\n")
    junk = tmp_path / "streets.geojson"
    junk.write_text("{not json")
    out = str(tmp_path / "c.csv")
    assert main(["--streets", str(junk), "--pings", str(pings), "--out", out]) == 2
    assert main(["--pings", str(pings), "--out", out]) == 2  # --streets missing
    assert (
        main(["--streets", str(junk), "--pings", str(pings), "--out", out, "--min-fraction", "0"])
        == 2
    )


def test_time_spellings() -> None:
    assert parse_time("2025-01-15T04:00:00Z") == T0.timestamp()
    assert parse_time("2025-01-15T05:00:00+01:00") == T0.timestamp()
    assert parse_time("2025-01-15T04:00:00") == T0.timestamp()  # UTC when no offset
    assert parse_time("2025-01-15T04:00:00.250Z") == T0.timestamp() + 0.25
    assert parse_time(str(int(T0.timestamp()))) == T0.timestamp()
    assert parse_time("1736913600.5") == 1736913600.5


def test_matcher_settings_change_what_is_matched_and_bad_ones_are_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Two 60 m blocks of one street, their ends 10 m apart: the map lacks the metres
    # between (geo.gaps), and a car drives straight across at 9 m/s, a fix a second.
    lat0, lon0 = 48.0, 15.0
    mx = 111_320.0 * 0.6691306  # metres per degree of longitude at 48 N

    def ll(x: float) -> list[float]:
        return [lon0 + x / mx, lat0]

    streets = tmp_path / "gap.geojson"
    streets.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "id": sid, "properties": {"highway": "residential", "oneway": "no"},
         "geometry": {"type": "LineString", "coordinates": [ll(a), ll(b)]}}
        for sid, a, b in (("west", -65.0, -5.0), ("east", 5.0, 65.0))]}))
    pings = tmp_path / "pings.csv"
    pings.write_text("vehicle_id,time,lat,lon\n" + "".join(
        f"car,{1_700_000_000 + t},{lat0},{ll(-80.0 + 9.0 * t)[0]}\n" for t in range(18)))
    covered = {}
    for name, extra in (("default", []), ("off", ["--set", "map_gap_m=0"])):
        out = tmp_path / f"{name}.csv"
        assert main(["--streets", str(streets), "--pings", str(pings), "--out", str(out),
                     *extra]) == 0
        covered[name] = {r["segment_id"] for r in read_out(out) if r["covered"] == "1"}
    # Joined across the gap, both blocks; with joining off, the track breaks at the gap
    # and the block after it is picked up only part way.
    assert covered["default"] == {"west", "east"}
    assert covered["off"] != covered["default"] and covered["off"] <= {"west", "east"}
    capsys.readouterr()
    for bad, says in ((["--set", "beta_m=3"], "not a matcher setting"),
                      (["--set", "map_gap_m=500"], "between 0 and 50"),
                      (["--set", "lag=2.5"], "whole number"),
                      (["--set", "map_gap_m"], "NAME=VALUE")):
        out = tmp_path / "bad.csv"
        assert main(["--streets", str(streets), "--pings", str(pings), "--out", str(out),
                     *bad]) == 2, bad
        assert says in capsys.readouterr().err, bad
        assert not out.exists()
