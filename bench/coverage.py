"""Coverage accuracy and speed: plowshare's engine against FMM (fastmm), side by side.

    .venv/bin/python -m bench.coverage            # full run, writes BENCHMARKS.md
    .venv/bin/python -m bench.coverage --quick    # a minute or two, prints only

Simulated storms: for each real OSM network, seeded plows drive for a while; the true
serviced set comes from the dense noiseless drive (``geo.truth``). The pings are then
thinned to 1-60 s, jittered, and in some rows thinned further by dropouts or spoiled
by outliers (``geo.degrade``). Real tracks: the six gps-truth car tracks, as trackers
on each possible k-second schedule would send them (``Track.phases``), scored against
their true route arcs. Both engines get the same pings and the same "one pass covers
>= min_fraction of the block" rule; scores are length-weighted precision and recall
of serviced blocks, pooled over networks.

Needs ``fastmm`` (bench/requirements.txt). Never part of the test suite.
"""

from __future__ import annotations

import os

# One core per engine run: keep numerical libraries from spreading over both cores,
# which would inflate pings/s. Set before numpy (via geo) is imported.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import shlex  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Mapping, Sequence  # noqa: E402
from concurrent.futures import ProcessPoolExecutor  # noqa: E402
from functools import partial  # noqa: E402
from pathlib import Path  # noqa: E402

from app.sim_offline import degrade_fleet, simulate_fleet  # noqa: E402
from app.streets.load import load_segments  # noqa: E402
from bench.coverage_report import kept_sections, load, report  # noqa: E402
from bench.coverage_rows import (  # noqa: E402
    EITHER,
    HEADING_SIGMA_DEG,
    LABELS,
    MIN_FRACTION,
    NETWORKS,
    REPO,
    SPEED_SIGMA_MPS,
    TRACKS,
    JobResult,
    Scenario,
    Tally,
    load_track,
    scenarios,
    score,
    shared_data,
    track_intervals,
)
from bench.fmm_baseline import FmmBaseline, FmmPing, Matched  # noqa: E402
from geo.graph import StreetGraph  # noqa: E402
from geo.matchtypes import Ping  # noqa: E402
from geo.network import Segment  # noqa: E402
from geo.simulate import SimFix  # noqa: E402
from geo.truth import simulated_truth  # noqa: E402


class PlowshareEngine:
    """``geo.coverage.compute_coverage`` split in its two halves, so they time apart.

    The network set-up (projection, spatial index, routing graph) is built once per
    network, as a live deployment does, and timed on its own, like fastmm's UBODT;
    each run is ``geo.coverage.match_batch``, the half of ``compute_coverage`` after
    its set-up. ``check`` asserts that a matcher reused across runs (warm route
    caches) still gives what a fresh one does.
    """

    def __init__(self, segments: Sequence[Segment]) -> None:
        from geo.match import Matcher

        self.segments = segments
        t0 = time.process_time()
        self.matcher = Matcher(segments)
        self.setup_s = time.process_time() - t0

    def run(self, pings: list[Ping]) -> set[str]:
        from geo.coverage import match_batch

        result = match_batch(self.matcher, pings, min_fraction=MIN_FRACTION)
        return {sid for sid, c in result.items() if c.covered}

    def check(self, pings: list[Ping]) -> None:
        from geo.coverage import compute_coverage

        whole = compute_coverage(self.segments, pings, min_fraction=MIN_FRACTION)
        if {sid for sid, c in whole.items() if c.covered} != self.run(pings):
            raise RuntimeError("bench's split of compute_coverage no longer matches it")


def plowshare_present() -> bool:
    try:
        import geo.coverage  # noqa: F401
    except ImportError:
        return False
    return True


def _timed(fn: Callable[[], set[str]]) -> tuple[set[str], float]:
    """Result and CPU seconds of this process: one core's work, unaffected by whatever
    else the (shared, 2-core) machine is running at the time."""
    t0 = time.process_time()
    out = fn()
    return out, time.process_time() - t0


def _fmm_run(
    fmm: FmmBaseline, by_vehicle: dict[str, list[FmmPing]], interval_s: float, sigma: float,
    keep: list[Matched] | None = None,
) -> set[str]:
    """Blocks fastmm's paths service, its blade changes placed as plowshare places its
    own (``bench.blade_rule``); the matched paths go to ``keep`` when given."""
    from geo.coverage import existing_objects_frozen

    fmm.tune(sigma, interval_s)
    # The same set-aside of long-lived objects as compute_coverage gets: turning
    # fastmm's paths into coverage is Python too.
    with existing_objects_frozen():
        matched = fmm.match(by_vehicle, interval_s)
        covered = _covered(fmm.coverage_of(matched, "placed"))
    if keep is not None:
        keep.append(matched)
    return covered


def _covered(fractions: Mapping[str, float]) -> set[str]:
    return {sid for sid, f in fractions.items() if f >= MIN_FRACTION}


def run_network(
    name: str, vehicles: int, duration_s: float, seed: int, quick: bool, cache: str
) -> JobResult:
    res = JobResult(name, seed=seed)
    segments = load_segments(shared_data() / "osm" / NETWORKS[name])
    graph = StreetGraph(segments)
    dense, _ = simulate_fleet(
        graph, vehicles=vehicles, duration_s=duration_s, interval_s=1.0, seed=seed
    )
    truth = simulated_truth(graph, dense, min_fraction=MIN_FRACTION)
    served_km = sum(t.length_m for t in truth.values() if t.serviced) / 1000
    res.info = (
        f"{len(segments)} blocks, {sum(s.length_m for s in segments) / 1000:.0f} km; "
        f"{vehicles} plows x {duration_s / 60:.0f} min serviced {served_km:.1f} km"
    )
    plowshare = PlowshareEngine(segments) if plowshare_present() else None
    if plowshare is not None:
        res.build_s["plowshare"] = plowshare.setup_s
    t0 = time.perf_counter()
    # A cache per job: two seeds of one network run at once and must not write the
    # same UBODT file together.
    fmm = FmmBaseline(segments, Path(cache) / f"{name}-{seed}")
    for interval in sorted({s.interval_s for s in scenarios(quick)}):
        fmm.prepare(interval)
    res.build_s["fmm"] = time.perf_counter() - t0

    for k, sc in enumerate(scenarios(quick)):
        sparse = {v: f[:: sc.interval_s] for v, f in dense.items()}
        pings = degrade_fleet(
            sparse,
            seed=seed * 1000 + k,
            noise_m=sc.noise_m,
            dropout=sc.dropout,
            burst=sc.burst,
            outliers=sc.outliers,
            speed_sigma_mps=SPEED_SIGMA_MPS if sc.sensors else 0.0,
            heading_sigma_deg=HEADING_SIGMA_DEG if sc.sensors else 0.0,
        )
        n = sum(len(p) for p in pings.values())
        if plowshare is not None:
            ours = _to_pings(pings, sc)
            if k == len(scenarios(quick)) - 1:
                plowshare.check(ours)
            covered, secs = _timed(partial(plowshare.run, ours))
            res.rows[(sc.label, "plowshare")] = score(covered, truth, n, secs)
        theirs = {
            v: [FmmPing(f.lon, f.lat, f.time.timestamp(), f.plow if sc.sensors else None)
                for f in fixes]
            for v, fixes in pings.items()
        }  # fmt: skip
        kept: list[Matched] = []
        covered, secs = _timed(partial(_fmm_run, fmm, theirs, sc.interval_s, sc.noise_m, kept))
        res.rows[(sc.label, "fmm")] = score(covered, truth, n, secs)
        # The same paths read generously (untimed): what the shared blade rule costs it.
        generous = _covered(fmm.coverage_of(kept[0], "either"))
        res.rows[(sc.label, "fmm" + EITHER)] = score(generous, truth, n, 0.0)
    return res


def _to_pings(fixes: Mapping[str, list[SimFix]], sc: Scenario) -> list[Ping]:
    out: list[Ping] = []
    for vehicle, seq in fixes.items():
        for f in seq:
            if sc.sensors:
                # What a plow's tracker reports besides position: GNSS speed and
                # course, an accuracy estimate, and the blade sensor.
                out.append(Ping(vehicle, f.time.timestamp(), f.lon, f.lat, f.speed_mps,
                                f.heading_deg, max(sc.noise_m, 1.0), f.plow))  # fmt: skip
            else:
                out.append(Ping(vehicle, f.time.timestamp(), f.lon, f.lat))
    return out


def run_tracks(track_ids: Sequence[str], intervals: Sequence[int], cache: str) -> JobResult:
    res = JobResult("gps-truth")
    present = plowshare_present()
    build = 0.0
    setup = 0.0
    ends_unsure = 0
    changed: list[str] = []
    for tid in track_ids:
        track = load_track(tid)
        segments, m = track.segments, track.measured
        ends_unsure += sum(1 for t in track.labels.values() if t.serviced is None)
        changed.append(f"{tid} {len(m.not_driven)}/{len(m.unsure)} of {len(track.route)}")
        t0 = time.perf_counter()
        fmm = FmmBaseline(segments, Path(cache) / f"track-{tid}")
        for interval in intervals:
            fmm.prepare(interval)
        build += time.perf_counter() - t0
        plowshare = PlowshareEngine(segments) if present else None
        setup += plowshare.setup_s if plowshare is not None else 0.0
        for interval in intervals:
            label = f"{interval} s"
            for phase in track.phases(interval):
                kept = phase.fixes
                runs: list[tuple[str, set[str], float]] = []
                if plowshare is not None:
                    # Positions and times only: the data set has nothing else.
                    ours = [Ping("car", f.time.timestamp(), f.lon, f.lat) for f in kept]
                    runs.append(("plowshare", *_timed(partial(plowshare.run, ours))))
                theirs = {"car": [FmmPing(f.lon, f.lat, f.time.timestamp()) for f in kept]}
                runs.append(("fmm", *_timed(partial(_fmm_run, fmm, theirs, interval, 10.0))))
                for engine, covered, secs in runs:
                    for key, against in ((engine, phase.measured.truth),
                                         (engine + LABELS, phase.labels)):
                        res.rows.setdefault((label, key), Tally()).add(
                            score(covered, against, len(kept), secs)
                        )
    res.build_s["fmm"] = build
    if present:
        res.build_s["plowshare"] = setup
    res.info = (
        f"{len(track_ids)} tracks; {ends_unsure} start/end arcs too close to call; "
        "labelled arcs the track shows were not serviced / too close to call: " + ", ".join(changed)
    )
    return res


# --- targets and report ----------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.coverage", description=__doc__)
    p.add_argument("--quick", action="store_true", help="small and fast; prints only")
    p.add_argument("--vehicles", type=int, default=None, help="plows per network")
    p.add_argument("--duration", type=float, default=None, help="seconds of plowing")
    p.add_argument("--seed", type=int, default=1, help="first seed")
    p.add_argument("--seeds", type=int, default=None, help="fleets per network (seeds)")
    p.add_argument("--jobs", type=int, default=2, help="networks run in parallel")
    p.add_argument("--out", type=Path, default=None, help="markdown report (full: BENCHMARKS.md)")
    args = p.parse_args(argv)
    vehicles = args.vehicles or (2 if args.quick else 6)
    duration = args.duration or (1200.0 if args.quick else 7200.0)
    networks = ["krems", "boston-downtown"] if args.quick else list(NETWORKS)
    seeds = range(args.seed, args.seed + (args.seeds or (1 if args.quick else 2)))
    tracks = TRACKS[:2] if args.quick else TRACKS
    out = args.out if args.out is not None else (None if args.quick else REPO / "BENCHMARKS.md")
    if not plowshare_present():
        print("geo.coverage not present: running the fastmm side only", file=sys.stderr)

    started = time.perf_counter()
    args.load_start = load()
    with (
        tempfile.TemporaryDirectory(prefix="ubodt-") as cache,
        ProcessPoolExecutor(max_workers=args.jobs) as pool,
    ):
        # Biggest first, so the small ones fill in around them.
        futures = [
            pool.submit(run_tracks, tracks, track_intervals(args.quick), cache),
            *(
                pool.submit(run_network, n, vehicles, duration, seed, args.quick, cache)
                for seed in seeds
                for n in networks
            ),
        ]
        results = []
        for fut in futures:
            res = fut.result()
            print(
                f"done: {res.name} seed {res.seed} ({time.perf_counter() - started:.0f} s)",
                file=sys.stderr,
            )
            results.append(res)
    wall = time.perf_counter() - started
    track_res, sim_res = results[0], results[1:]
    command = ".venv/bin/python -m bench.coverage" + (
        " " + shlex.join(argv if argv is not None else sys.argv[1:])
        if (argv if argv is not None else sys.argv[1:])
        else ""
    )
    text = report(args, sim_res, track_res, wall, command)
    if out is not None:
        out.write_text(text.rstrip("\n") + "\n" + kept_sections(out))
        print(f"wrote {out}", file=sys.stderr)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
