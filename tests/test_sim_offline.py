"""``plowshare simulate --csv``: simulated storms on real streets written as PINGS.csv
plus their true coverage, without a database."""

from __future__ import annotations

import csv
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from app.offline_coverage import read_pings
from app.sim_offline import main
from tests.geo.geo_shared_data import shared_data

REPO = Path(__file__).resolve().parents[1]
START = datetime(2025, 1, 15, 4, 0, tzinfo=UTC).timestamp()


def simulate(tmp_path: Path, tag: str, *extra: str) -> tuple[Path, Path, int]:
    pings, truth = tmp_path / f"{tag}-pings.csv", tmp_path / f"{tag}-truth.csv"
    args = [
        "--csv", str(pings), "--truth", str(truth),
        "--streets", str(shared_data("osm", "krems.osm.gz")),
        "--vehicles", "2", "--duration", "1200", "--seed", "3", *extra,
    ]  # fmt: skip
    return pings, truth, main(args)


def truth_rows(path: Path) -> dict[str, tuple[float, str]]:
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        assert reader.fieldnames == ["segment_id", "true_fraction", "serviced"]
        return {r["segment_id"]: (float(r["true_fraction"]), r["serviced"]) for r in reader}


def test_writes_degraded_pings_the_coverage_cli_reads_and_a_truth_per_segment(
    tmp_path: Path,
) -> None:
    pings, truth, rc = simulate(
        tmp_path, "a", "--interval", "15", "--noise", "10", "--dropout", "0.1",
        "--outliers", "0.02",
    )  # fmt: skip
    assert rc == 0
    with pings.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["vehicle_id", "time", "lat", "lon", "speed", "heading", "plow"]
    assert {r["vehicle_id"] for r in rows} == {"plow01", "plow02"}
    assert {r["plow"] for r in rows} <= {"0", "1"}
    # 81 reporting slots per vehicle, about a tenth lost.
    assert 120 <= len(rows) <= 160
    parsed = read_pings(pings)
    assert not parsed.bad and len(parsed.pings) == len(rows)
    assert all((p.t - START) % 15 == 0 and 0 <= p.t - START <= 1200 for p in parsed.pings)
    assert [r["time"] for r in rows] == sorted(r["time"] for r in rows)  # a feed's order

    served = truth_rows(truth)
    assert len(served) > 1000  # one row per Krems block
    assert all((s == "1") == (f >= 0.8) for f, s in served.values())
    assert 20 < sum(s == "1" for _, s in served.values()) < 400


def test_the_seed_fixes_the_routes_whatever_the_degradation(tmp_path: Path) -> None:
    a = simulate(tmp_path, "a", "--interval", "5", "--noise", "10")
    b = simulate(tmp_path, "b", "--interval", "5", "--noise", "10")
    c = simulate(tmp_path, "c", "--interval", "30", "--noise", "0", "--dropout", "0.3")
    d = simulate(tmp_path, "d", "--interval", "2.5")
    assert a[2] == b[2] == c[2] == d[2] == 0
    assert a[0].read_bytes() == b[0].read_bytes()
    assert a[0].read_bytes() != c[0].read_bytes()
    # Truth comes from the dense noiseless drive, so it ignores interval and noise.
    assert a[1].read_bytes() == c[1].read_bytes()
    serviced = {k for k, (_, s) in truth_rows(a[1]).items() if s == "1"}
    assert serviced == {k for k, (_, s) in truth_rows(d[1]).items() if s == "1"}


def test_without_the_plow_column(tmp_path: Path) -> None:
    pings, _, rc = simulate(tmp_path, "a", "--no-plow")
    assert rc == 0
    assert pings.read_text().splitlines()[0] == "vehicle_id,time,lat,lon,speed,heading"


def test_bad_inputs_exit_2_without_writing(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.osm.pbf"
    out = tmp_path / "p.csv"
    args = ["--csv", str(out), "--truth", str(tmp_path / "t.csv"), "--streets", str(missing)]
    assert main(args) == 2
    assert simulate(tmp_path, "x", "--dropout", "1.5")[2] == 2
    assert simulate(tmp_path, "y", "--interval", "0")[2] == 2
    assert not out.exists()


def test_runs_as_a_module(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable, "-m", "app.sim_offline",
            "--csv", str(tmp_path / "p.csv"), "--truth", str(tmp_path / "t.csv"),
            "--streets", str(shared_data("osm", "boston-downtown.osm.pbf")),
            "--vehicles", "1", "--duration", "300",
        ],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "1 vehicles, 61 pings" in done.stderr


def test_motion_noise_spoils_speed_and_heading_but_not_positions(tmp_path: Path) -> None:
    plain = simulate(tmp_path, "a", "--interval", "5", "--noise", "10")
    moved = simulate(
        tmp_path, "b", "--interval", "5", "--noise", "10", "--speed-noise", "0.5",
        "--heading-noise", "5",
    )  # fmt: skip
    assert plain[2] == moved[2] == 0

    def rows(path: Path) -> list[dict[str, str]]:
        with path.open(newline="") as fh:
            return list(csv.DictReader(fh))

    a, b = rows(plain[0]), rows(moved[0])
    assert [(r["time"], r["lat"], r["lon"]) for r in a] == [
        (r["time"], r["lat"], r["lon"]) for r in b
    ]
    assert sum(r["speed"] != s["speed"] for r, s in zip(a, b, strict=True)) > 0.9 * len(a)
    assert sum(r["heading"] != s["heading"] for r, s in zip(a, b, strict=True)) > 0.9 * len(a)
