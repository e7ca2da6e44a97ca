"""Quick accuracy and speed check of geo.coverage.compute_coverage on real data.

Simulated plow drives on real OSM networks (truth from the simulator) and the real
1 Hz car tracks of the Kubička et al. map-matching benchmark (truth: the arcs the car
drove), subsampled to sparser intervals. Prints length-weighted precision/recall of
"serviced" blocks and pings per second of the offline path on one core.

    .venv/bin/python bench/match_quick.py [--minutes 60] [--seeds 1 2 3] [--no-speed]
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.streets.load import load_segments
from geo.coverage import compute_coverage
from geo.graph import StreetGraph
from geo.match import Matcher, Ping
from geo.network import Segment
from geo.simulate import SimFix, add_noise, drive

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
T0 = datetime(2025, 1, 15, 4, 30, tzinfo=UTC)
TRUTH_DT = 0.25  # dense simulation step from which the truth is read


def sim_truth(fixes: Sequence[SimFix]) -> set[str]:
    """Blocks the simulated truck drove completely (every block but the last, which it
    was still on when the drive ended)."""
    runs: list[str] = []
    for f in fixes:
        if not runs or runs[-1] != f.source_id:
            runs.append(f.source_id)
    return set(runs[:-1]) - {runs[-1]}


def to_pings(fixes: Sequence[SimFix], *, speed: bool, plow: bool = False) -> list[Ping]:
    return [
        Ping(
            "truck",
            f.time.timestamp(),
            f.lon,
            f.lat,
            speed_mps=f.speed_mps if speed else None,
            heading_deg=f.heading_deg if speed else None,
            plow=f.plow if plow else None,
        )
        for f in fixes
    ]


def score(
    result: dict[str, object],
    truth: set[str],
    lengths: dict[str, float],
    ignore: set[str] = frozenset(),
) -> tuple[float, float, list[str], list[str]]:
    got = {sid for sid, c in result.items() if c.covered} - ignore  # type: ignore[attr-defined]
    truth = truth - ignore
    tp = sum(lengths[s] for s in got & truth)
    p = tp / sum(lengths[s] for s in got) if got else 1.0
    r = tp / sum(lengths[s] for s in truth) if truth else 1.0
    return p, r, sorted(got - truth), sorted(truth - got)


def run_sim(
    name: str,
    segs: list[Segment],
    minutes: float,
    seeds: Sequence[int],
    intervals: Sequence[float],
    speed: bool,
    verbose: bool,
) -> None:
    graph = StreetGraph(segs)
    lengths = {s.source_id: s.length_m for s in segs}
    t = time.perf_counter()
    Matcher(segs)
    print(f"{name}: {len(segs)} segments, Matcher built in {time.perf_counter() - t:.2f} s")
    for interval in intervals:
        tp = fp_len = fn_len = tot_p = tot_t = 0.0
        n = 0
        el = 0.0
        for seed in seeds:
            dense = drive(
                graph,
                random.Random(seed),
                duration_s=minutes * 60,
                interval_s=TRUTH_DT,
                start_time=T0,
            )
            truth = sim_truth(dense)
            step = round(interval / TRUTH_DT)
            fixes = add_noise(dense[::step], random.Random(seed + 1000), 10.0)
            pings = to_pings(fixes, speed=speed)
            t = time.perf_counter()
            res = compute_coverage(segs, pings)
            el += time.perf_counter() - t
            n += len(pings)
            p, r, fps, fns = score(res, truth, lengths)
            got = {s for s, c in res.items() if c.covered}
            tp += sum(lengths[s] for s in got & truth)
            tot_p += sum(lengths[s] for s in got)
            tot_t += sum(lengths[s] for s in truth)
            fp_len += sum(lengths[s] for s in fps)
            fn_len += sum(lengths[s] for s in fns)
            if verbose:
                print(f"   seed {seed}: P={p:.4f} R={r:.4f} fp={fps[:8]} fn={fns[:8]}")
        print(
            f"  {interval:>4.0f} s: precision {tp / tot_p:.4f} recall {tp / tot_t:.4f} "
            f"({n} pings, {n / el:,.0f} pings/s incl. Matcher build)"
        )


def run_truth(track_id: str, intervals: Sequence[int], verbose: bool) -> None:
    base = DATA / "gps-truth"
    segs = load_segments(
        base / f"{track_id}_network.geojson.gz", id_property="arc_id", oneway_default=True
    )
    import gzip
    import json

    with gzip.open(base / f"{track_id}_network.geojson.gz", "rt") as fh:
        feats = json.load(fh)["features"]
    truth = {
        str(f["properties"]["arc_id"]) for f in feats if f["properties"]["on_ground_truth_route"]
    }
    lengths = {s.source_id: s.length_m for s in segs}
    with open(base / f"{track_id}_track.csv") as fh:
        rows = list(csv.DictReader(fh))
    fixes = [Ping("car", float(r["t_rel_s"]), float(r["lon"]), float(r["lat"])) for r in rows]
    for interval in intervals:
        sub: list[Ping] = []
        for f in fixes:
            if not sub or f.t - sub[-1].t >= interval - 1e-6:
                sub.append(f)
        t = time.perf_counter()
        res = compute_coverage(segs, sub)
        el = time.perf_counter() - t
        p, r, fps, fns = score(res, truth, lengths)
        print(
            f"  {track_id} {interval:>3d} s: precision {p:.4f} recall {r:.4f} "
            f"({len(sub)} pings, {len(sub) / el:,.0f} pings/s)"
        )
        if verbose:
            print(f"     fp={fps[:10]} fn={fns[:10]}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=60)
    ap.add_argument("--seeds", type=int, nargs="*", default=[1, 2])
    ap.add_argument("--intervals", type=float, nargs="*", default=[1, 5, 15, 30, 60])
    ap.add_argument("--no-speed", action="store_true")
    ap.add_argument("--town", default="krems.osm.gz")
    ap.add_argument(
        "--tracks",
        nargs="*",
        default=["00000046", "00000075", "00000095", "00000048", "00000039", "00000026"],
    )
    ap.add_argument("-v", action="store_true")
    a = ap.parse_args()
    if a.town != "none":
        segs = load_segments(DATA / "osm" / a.town)
        run_sim(a.town, segs, a.minutes, a.seeds, a.intervals, not a.no_speed, a.v)
    for tid in a.tracks:
        run_truth(tid, [1, 5, 15, 30, 60], a.v)


if __name__ == "__main__":
    main()
