"""The database-free commands answer under the `plowshare` console script itself."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

from tests.geo.geo_shared_data import shared_data

PLOWSHARE = str(Path(sys.executable).with_name("plowshare"))


def test_simulate_csv_then_coverage(tmp_path: Path) -> None:
    streets = shared_data() / "osm" / "krems.osm.gz"
    pings, truth, out = tmp_path / "p.csv", tmp_path / "t.csv", tmp_path / "c.csv"
    sim = subprocess.run(
        [PLOWSHARE, "simulate", "--csv", str(pings), "--truth", str(truth), "--streets",
         str(streets), "--vehicles", "2", "--interval", "5", "--duration", "900"],
        capture_output=True, text=True, timeout=120)
    assert sim.returncode == 0, sim.stderr
    cov = subprocess.run(
        [PLOWSHARE, "coverage", "--streets", str(streets), "--pings", str(pings),
         "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert cov.returncode == 0, cov.stderr
    with out.open() as f:
        rows = list(csv.DictReader(f))
    with truth.open() as f:
        true_ids = {r["segment_id"] for r in csv.DictReader(f) if r["serviced"] == "1"}
    covered = {r["segment_id"] for r in rows if r["covered"] == "1"}
    assert rows and set(rows[0]) == {"segment_id", "covered", "covered_fraction", "passes",
                                     "first_service", "last_service"}
    assert len(true_ids) > 10
    # Noise-free 5 s pings: what is covered was truly serviced, and nearly all of it.
    assert len(covered & true_ids) >= 0.95 * len(true_ids)
    assert len(covered - true_ids) <= 0.02 * len(covered)
    missing = subprocess.run([PLOWSHARE, "coverage", "--streets", str(streets), "--pings",
                              str(tmp_path / "nope.csv"), "--out", str(out)],
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and "nope.csv" in missing.stderr
