"""Coverage accuracy and speed: plowshare's engine against FMM (fastmm), side by side.

    .venv/bin/python -m bench.coverage            # full run, writes BENCHMARKS.md
    .venv/bin/python -m bench.coverage --quick    # a minute or two, prints only

Simulated storms: for each real OSM network, seeded plows drive for a while; the true
serviced set comes from the dense noiseless drive (``geo.truth``). The pings are then
thinned to 1-60 s, jittered, and in some rows thinned further by dropouts or spoiled
by outliers (``geo.degrade``). Real tracks: the six gps-truth car tracks, subsampled,
scored against their true route arcs. Both engines get the same pings and the same
"one pass covers >= min_fraction of the block" rule; scores are length-weighted
precision and recall of serviced blocks, pooled over networks.

Needs ``fastmm`` (bench/requirements.txt). Never part of the test suite.
"""

from __future__ import annotations

import os

# One core per engine run: keep numerical libraries from spreading over both cores,
# which would inflate pings/s. Set before numpy (via geo) is imported.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import csv  # noqa: E402
import gzip  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import shlex  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Mapping, Sequence  # noqa: E402
from concurrent.futures import ProcessPoolExecutor  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from datetime import UTC, datetime  # noqa: E402
from pathlib import Path  # noqa: E402

from app.sim_offline import degrade_fleet, simulate_fleet  # noqa: E402
from app.streets.load import load_segments  # noqa: E402
from bench.fmm_baseline import FmmBaseline, FmmPing  # noqa: E402
from geo.degrade import subsample  # noqa: E402
from geo.graph import StreetGraph  # noqa: E402
from geo.matchtypes import Ping  # noqa: E402
from geo.network import Segment  # noqa: E402
from geo.route_truth import MeasuredTruth, measured_route_truth, route_truth  # noqa: E402
from geo.simulate import SimFix  # noqa: E402
from geo.truth import TrueCoverage, simulated_truth  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
MIN_FRACTION = 0.8
NETWORKS = {
    "krems": "krems.osm.gz",
    "north-bayreuth": "north-bayreuth.osm.gz",
    "andorra": "andorra.osm.pbf",
    "baltimore": "baltimore.osm.pbf",
    "boston-downtown": "boston-downtown.osm.pbf",
    "porto": "porto.osm.pbf",
}
TRACKS = ("00000075", "00000095", "00000039", "00000026", "00000046", "00000048")
INTERVALS = (1, 5, 15, 30, 60)
NOISES = (5.0, 10.0, 20.0)
# GNSS speed and course errors on the simulated pings (geo.degrade.jitter_motion).
SPEED_SIGMA_MPS = 0.5
HEADING_SIGMA_DEG = 5.0


def shared_data() -> Path:
    default = REPO / ".." / "shared" / "data"
    return Path(os.environ.get("PLOWSHARE_SHARED_DATA", default)).resolve()


@dataclass(frozen=True, slots=True)
class Scenario:
    interval_s: int
    noise_m: float
    dropout: float = 0.0
    burst: float = 1.0
    outliers: float = 0.0
    sensors: bool = True  # speed, heading, plow and accuracy columns present

    @property
    def label(self) -> str:
        parts = [f"{self.interval_s} s", f"{self.noise_m:g} m"]
        if self.dropout:
            parts.append(f"{self.dropout:.0%} lost (bursts of {self.burst:g})")
        if self.outliers:
            parts.append(f"{self.outliers:.0%} outliers")
        if not self.sensors:
            parts.append("position only")
        if self.noise_m == 0:
            parts.append("exact positions")
        return ", ".join(parts)

    @property
    def target_noise(self) -> float:
        """Noise to look targets up by; degraded or sensorless rows get none (inf)."""
        clean = not (self.dropout or self.outliers) and self.sensors
        return self.noise_m if clean else math.inf

    @property
    def plain(self) -> bool:
        return not (self.dropout or self.outliers) and self.sensors and self.noise_m > 0


def scenarios(quick: bool) -> list[Scenario]:
    if quick:
        grid = [Scenario(i, 10.0) for i in (1, 15, 60)]
        return [*grid, Scenario(15, 10.0, dropout=0.2, burst=5, outliers=0.02)]
    grid = [Scenario(i, n) for i in INTERVALS for n in NOISES]
    extra = [
        Scenario(5, 10.0, dropout=0.2, burst=10, outliers=0.02),
        Scenario(15, 10.0, dropout=0.2, burst=3, outliers=0.02),
        Scenario(30, 10.0, dropout=0.1, outliers=0.02),
        Scenario(15, 10.0, sensors=False),
        # Exact positions: what is left missing is what no matcher can know, because
        # between sparse pings the truck's real route is not the shortest one.
        Scenario(15, 0.0),
        Scenario(30, 0.0),
        Scenario(60, 0.0),
    ]
    return grid + extra


@dataclass(slots=True)
class Tally:
    """Pooled length-weighted confusion counts and timing of one engine on one row."""

    hit_m: float = 0.0  # covered and truly serviced
    said_m: float = 0.0  # covered
    true_m: float = 0.0  # truly serviced
    pings: int = 0
    seconds: float = 0.0

    def add(self, other: Tally) -> None:
        self.hit_m += other.hit_m
        self.said_m += other.said_m
        self.true_m += other.true_m
        self.pings += other.pings
        self.seconds += other.seconds

    @property
    def precision(self) -> float:
        return self.hit_m / self.said_m if self.said_m > 0 else 1.0

    @property
    def recall(self) -> float:
        return self.hit_m / self.true_m if self.true_m > 0 else 1.0

    @property
    def rate(self) -> float:
        return self.pings / self.seconds if self.seconds > 0 else 0.0


def score(
    covered: set[str], truth: Mapping[str, TrueCoverage], pings: int, seconds: float
) -> Tally:
    t = Tally(pings=pings, seconds=seconds)
    for sid, tc in truth.items():
        if tc.serviced is None:
            continue  # too close to call: neither a hit nor a miss (see geo.truth)
        said = sid in covered
        t.said_m += tc.length_m if said else 0.0
        t.true_m += tc.length_m if tc.serviced else 0.0
        t.hit_m += tc.length_m if (said and tc.serviced) else 0.0
    return t


@dataclass(slots=True)
class JobResult:
    name: str
    seed: int = 0
    rows: dict[tuple[str, str], Tally] = field(default_factory=dict)  # (row, engine)
    build_s: dict[str, float] = field(default_factory=dict)  # engine -> one-off set-up
    info: str = ""


class PlowshareEngine:
    """``geo.coverage.compute_coverage`` split in its two halves, so they time apart.

    The network set-up (projection, spatial index, routing graph) is built once per
    network, as a live deployment does, and timed on its own, like fastmm's UBODT;
    each run then does exactly what ``compute_coverage`` does after its set-up.
    ``check`` asserts that this stays true as the engine evolves.
    """

    def __init__(self, segments: Sequence[Segment]) -> None:
        from geo.match import Matcher

        self.segments = segments
        t0 = time.process_time()
        self.matcher = Matcher(segments)
        self.setup_s = time.process_time() - t0

    def run(self, pings: list[Ping]) -> set[str]:
        from geo.coverage import CoverageBook

        book = CoverageBook(self.segments, MIN_FRACTION)
        by_vehicle: dict[str, list[Ping]] = {}
        for p in pings:
            by_vehicle.setdefault(p.vehicle, []).append(p)
        for vehicle in sorted(by_vehicle):
            track = self.matcher.track(vehicle)
            book.add(track.push_many(sorted(by_vehicle[vehicle], key=lambda p: p.t)))
            book.add(track.flush())
        return {sid for sid, c in book.result().items() if c.covered}

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
    fmm: FmmBaseline, by_vehicle: dict[str, list[FmmPing]], interval_s: float, sigma: float
) -> set[str]:
    fmm.tune(sigma, interval_s)
    cov = fmm.coverage(by_vehicle, interval_s)
    return {sid for sid, f in cov.items() if f >= MIN_FRACTION}


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
            covered, secs = _timed(lambda ours=ours, e=plowshare: e.run(ours))
            res.rows[(sc.label, "plowshare")] = score(covered, truth, n, secs)
        theirs = {
            v: [FmmPing(f.lon, f.lat, f.time.timestamp(), f.plow if sc.sensors else None)
                for f in fixes]
            for v, fixes in pings.items()
        }  # fmt: skip
        covered, secs = _timed(
            lambda theirs=theirs, sc=sc: _fmm_run(fmm, theirs, sc.interval_s, sc.noise_m)
        )
        res.rows[(sc.label, "fmm")] = score(covered, truth, n, secs)
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


@dataclass(frozen=True, slots=True)
class Track:
    """One gps-truth track: network, 1 Hz fixes (as SimFix-like rows) and its truths."""

    segments: list[Segment]
    fixes: list[SimFix]
    route: set[str]  # arc ids labelled on_ground_truth_route
    # The data set's labels as given (every route arc driven end to end) ...
    labels: dict[str, TrueCoverage]
    # ... and corrected where the dense track shows otherwise (what the table scores).
    measured: MeasuredTruth


def load_track(track_id: str) -> Track:
    root = shared_data() / "gps-truth"
    net = root / f"{track_id}_network.geojson.gz"
    segments = load_segments(net, id_property="arc_id", oneway_default=True)
    with gzip.open(net) as fh:
        route = {
            str(f["properties"]["arc_id"])
            for f in json.load(fh)["features"]
            if f["properties"]["on_ground_truth_route"]
        }
    with (root / f"{track_id}_track.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    t0 = datetime(2015, 1, 1, tzinfo=UTC).timestamp()
    fixes = [
        SimFix(datetime.fromtimestamp(t0 + float(r["t_rel_s"]), UTC), float(r["lon"]),
               float(r["lat"]), 0.0, 0.0, "", True, True)
        for r in rows
    ]  # fmt: skip
    labels = route_truth(
        segments, route, [(f.lon, f.lat) for f in fixes], min_fraction=MIN_FRACTION
    )
    timed = [(f.lon, f.lat, f.time.timestamp() - t0) for f in fixes]
    measured = measured_route_truth(segments, route, timed, min_fraction=MIN_FRACTION)
    return Track(segments, fixes, route, labels, measured)


# Engine names of the rows scored against the data set's labels as given.
LABELS = "/labels"


def run_tracks(track_ids: Sequence[str], intervals: Sequence[int], cache: str) -> JobResult:
    res = JobResult("gps-truth")
    present = plowshare_present()
    build = 0.0
    setup = 0.0
    ends_unsure = 0
    changed: list[str] = []
    for tid in track_ids:
        track = load_track(tid)
        segments, fixes, m = track.segments, track.fixes, track.measured
        truth = m.truth
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
            kept = subsample(fixes, interval)
            label = f"{interval} s"
            runs: list[tuple[str, set[str], float]] = []
            if plowshare is not None:
                # Positions and times only: the data set has nothing else.
                ours = [Ping("car", f.time.timestamp(), f.lon, f.lat) for f in kept]
                runs.append(("plowshare", *_timed(lambda ours=ours, e=plowshare: e.run(ours))))
            theirs = {"car": [FmmPing(f.lon, f.lat, f.time.timestamp()) for f in kept]}
            runs.append(("fmm", *_timed(
                lambda theirs=theirs, i=interval, fm=fmm: _fmm_run(fm, theirs, i, 10.0)
            )))  # fmt: skip
            for engine, covered, secs in runs:
                for key, against in ((engine, truth), (engine + LABELS, track.labels)):
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


def target_for(interval_s: int, noise_m: float) -> tuple[float, float] | None:
    """(precision, recall) the engine must reach, or None where no target is set."""
    if noise_m > 10.0:
        return None
    if interval_s <= 15:
        return (0.995, 0.98)
    if interval_s <= 30:
        return (0.99, 0.95)
    if interval_s <= 60:
        return (0.98, 0.90)
    return None


def meets(ours: Tally | None, target: tuple[float, float] | None) -> bool:
    return (
        ours is not None
        and target is not None
        and ours.precision >= target[0]
        and ours.recall >= target[1]
    )


def not_below_fmm(ours: Tally | None, fmm: Tally | None) -> bool:
    # Compared at 3 decimals: a difference in the 4th is run-to-run noise.
    if ours is None or fmm is None:
        return False
    p_ok = round(ours.precision, 3) >= round(fmm.precision, 3)
    return p_ok and round(ours.recall, 3) >= round(fmm.recall, 3)


def verdict(ours: Tally, fmm: Tally, target: tuple[float, float] | None) -> str:
    notes = []
    if target is not None:
        ok = meets(ours, target)
        notes.append(f"P≥{target[0]}/R≥{target[1]}: {'met' if ok else '**not met**'}")
    notes.append("≥ fmm: " + ("met" if not_below_fmm(ours, fmm) else "**not met**"))
    return "; ".join(notes)


def table(
    rows: Sequence[tuple[str, int, float]], tallies: Mapping[tuple[str, str], Tally]
) -> list[str]:
    out = [
        "| pings | plowshare P | plowshare R | plowshare pings/s "
        "| fmm P | fmm R | fmm pings/s | pings | targets |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for label, interval, noise in rows:
        fm = tallies.get((label, "fmm"))
        ours = tallies.get((label, "plowshare"))
        if fm is None:
            continue
        if ours is None:
            left = "n/a | n/a | n/a"
            judged = "plowshare engine not present"
        else:
            left = f"{ours.precision:.4f} | {ours.recall:.4f} | {ours.rate:,.0f}"
            judged = verdict(ours, fm, target_for(interval, noise))
        out.append(
            f"| {label} | {left} | {fm.precision:.4f} | {fm.recall:.4f} | {fm.rate:,.0f} "
            f"| {fm.pings:,} | {judged} |"
        )
    return out


def merge(results: Sequence[JobResult]) -> dict[tuple[str, str], Tally]:
    pooled: dict[tuple[str, str], Tally] = {}
    for r in results:
        for key, t in r.rows.items():
            pooled.setdefault(key, Tally()).add(t)
    return pooled


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


# What the numbers depend on: the engine (geo/) and this benchmark.
_OURS = ("bench/coverage.py", "bench/fmm_baseline.py", "app/sim_offline.py")


def git_head() -> str:
    """Commit measured, and whether the engine's files differed from it."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
            check=True,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "geo", *_OURS], cwd=REPO,
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + (" (plus uncommitted changes in geo/ or this benchmark)" if dirty else "")


def load() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def report(
    args: argparse.Namespace,
    sim: Sequence[JobResult],
    tracks: JobResult,
    wall_s: float,
    command: str,
) -> str:
    import fastmm

    pooled = merge(sim)
    scs = scenarios(args.quick)
    plain_rows = [(s.label, s.interval_s, s.target_noise) for s in scs if s.plain]
    hard_rows = [(s.label, s.interval_s, s.target_noise) for s in scs if not s.plain]
    overall = Tally()
    for (_, engine), t in pooled.items():
        if engine == "plowshare":
            overall.add(t)
    for (_, engine), t in tracks.rows.items():
        if engine == "plowshare":
            overall.add(t)
    lines = [
        "# Benchmarks",
        "",
        "Coverage accuracy and speed of plowshare's offline engine (`geo.coverage."
        "compute_coverage`) against FMM ([fastmm](https://pypi.org/project/fastmm/) "
        f"{fastmm.__version__}, C++ HMM map matching with a precomputed UBODT), same pings, "
        "same rule: a block is serviced when one pass covers ≥ 80 % of it.",
        "",
        f"- Reproduce: `{command}` (about {wall_s / 60:.0f} min here; `--quick` for a "
        "fast check that prints instead of writing this file)",
        f"- Machine: {machine()}; "
        + ("one network at a time" if args.jobs == 1
           else f"{args.jobs} networks benchmarked in parallel")
        + ", "
        "each engine run single-threaded on one core; load average at start / end "
        f"{args.load_start} / {load()} (the machine is shared with other work, hence "
        "CPU time below)",
        f"- Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; plowshare commit {git_head()}",
        "- Precision/recall: length-weighted over blocks, pooled over networks (P = "
        "covered length that truly was serviced / covered length; R = truly serviced "
        "length found covered / truly serviced length).",
        "- pings/s: pings / CPU seconds (one core) to match them and book coverage, once the "
        "network is set up (plowshare's `compute_coverage` less its set-up of projection, "
        "index and routing graph; fastmm's `match` plus turning its path into coverage, "
        "less its UBODT precomputation). One-off set-up, plowshare / fastmm: "
        + ", ".join(
            f"{r.name} {r.build_s.get('plowshare', float('nan')):.1f} s / "
            f"{r.build_s.get('fmm', 0):.1f} s"
            for r in [*sim, tracks]
            if r.seed == args.seed or r is tracks
        )
        + ".",
        "",
        "## Targets",
        "",
        "| where | precision | recall |",
        "|---|---:|---:|",
        "| ≤ 15 s between pings, ≤ 10 m noise | ≥ 0.995 | ≥ 0.98 |",
        "| 30 s, ≤ 10 m | ≥ 0.99 | ≥ 0.95 |",
        "| 60 s, ≤ 10 m | ≥ 0.98 | ≥ 0.90 |",
        "| every row | never below fastmm | never below fastmm |",
        "| throughput | ≥ 20,000 pings/s overall | |",
        "",
        "Rows with 20 m noise, dropouts, outliers or no speed/heading/blade data have no "
        "absolute target; they are compared with fastmm only. The exact-position rows do "
        "have the targets (0 m is within 10 m).",
        "",
    ]
    judged = [
        (label, interval, noise, pooled.get((label, "plowshare")), pooled.get((label, "fmm")))
        for label, interval, noise in [(s.label, s.interval_s, s.target_noise) for s in scs]
    ] + [
        (label, i, 10.0, tracks.rows.get((label, "plowshare")), tracks.rows.get((label, "fmm")))
        for label, i in [(f"{i} s", i) for i in track_intervals(args.quick)]
    ]
    with_target = [j for j in judged if j[3] is not None and target_for(j[1], j[2])]
    met = [j for j in with_target if meets(j[3], target_for(j[1], j[2]))]
    compared = [j for j in judged if j[3] is not None and j[4] is not None]
    not_below = [j for j in compared if not_below_fmm(j[3], j[4])]
    if compared:
        lines += [
            f"**Accuracy targets:** met in {len(met)} of {len(with_target)} rows that have "
            f"one. **Never below fastmm:** {len(not_below)} of {len(compared)} rows "
            "(precision and recall both at least fastmm's, to 3 decimals).",
            "",
        ]
    if overall.pings:
        ok = overall.rate >= 20_000
        lines += [
            f"**Overall throughput (plowshare, every row):** {overall.rate:,.0f} pings/s — "
            + ("met" if ok else "**not met**"),
            "",
        ]
    lines += [
        "## Simulated plows on real streets",
        "",
        "Seeded plows (`geo.simulate.drive`) on each network; truth from the dense "
        "noiseless 1 s drive (`geo.truth.simulated_truth`, which also recovers blocks "
        "crossed between two fixes). Pings are every k-th fix, with Gaussian position "
        f"noise of the given sigma; plowshare also gets each fix's speed and heading (with "
        f"GNSS-like errors: sigma {SPEED_SIGMA_MPS} m/s and {HEADING_SIGMA_DEG:g} degrees), "
        "blade state and an accuracy equal to the noise sigma, as trackers report them. "
        "fastmm cannot use speed or heading; its knobs are set per row from the noise "
        "sigma and the interval as a grid search on an unscored seed found best (see "
        "`FmmBaseline.tune`: up to 5 s, gps_error 2 sigma and 3 sigma reverse tolerance; "
        "sparser, gps_error = sigma and none; 16 candidates within max(50 m, 4 sigma)), "
        "and its path counts only where the blade was down at either end of a step: "
        "where the blade went up or down between two pings fastmm is credited the whole "
        "step, while plowshare puts the change at one intersection (down on streets "
        "that plow has not cleared yet, up on those it has; the middle when it knows "
        "neither) and credits only the blade-down side. That is stricter, and at 60 s, "
        "where most steps span a blade change, it is most of the recall difference. "
        f"{len({r.seed for r in sim})} seeded fleets per network, pooled.",
        "",
        *[f"- {r.name} (seed {r.seed}): {r.info}" for r in sim],
        "",
        *table(plain_rows, pooled),
        "",
        "### Dropouts, outliers, missing sensors, exact positions",
        "",
        "Dropouts follow a two-state loss model with the given mean burst length "
        "(`geo.degrade.drop_out`); outliers jump 100-400 m (`geo.degrade.add_outliers`). "
        "The exact-position rows show a ceiling: with no GPS error at all, what is still "
        "missed at 30-60 s is route the truck drove between two pings that is not the "
        "shortest way between them (the simulated plows wander block by block), which "
        "no matcher can recover from the pings alone.",
        "",
        *table(hard_rows, pooled),
        "",
        "### Per network (10 m noise)",
        "",
        "| network | interval | plowshare P | plowshare R | fmm P | fmm R |",
        "|---|---|---:|---:|---:|---:|",
    ]
    by_network: dict[str, list[JobResult]] = {}
    for r in sim:
        by_network.setdefault(r.name, []).append(r)
    for name, runs in by_network.items():
        rows = merge(runs)
        for sc in scs:
            if not sc.plain or sc.noise_m != 10.0:
                continue
            fm = rows.get((sc.label, "fmm"))
            ours = rows.get((sc.label, "plowshare"))
            if fm is None:
                continue
            left = "n/a | n/a" if ours is None else f"{ours.precision:.4f} | {ours.recall:.4f}"
            lines.append(
                f"| {name} | {sc.interval_s} s | {left} | {fm.precision:.4f} | {fm.recall:.4f} |"
            )
    track_rows = [(f"{i} s", i, 10.0) for i in track_intervals(args.quick)]
    lines += [
        "",
        "## Real car tracks (gps-truth)",
        "",
        "The six 1 Hz tracks of Kubička et al., *Dataset for testing and training of "
        "map-matching algorithms* (IEEE IV 2015), subsampled, scored per directed arc. "
        "The data set labels the arcs the car drove; every labelled arc counts as driven "
        "end to end, except the arcs the track starts and ends on, judged by the part "
        "really driven (first/last fix projected onto the arc; within 15 m of the 80 % "
        "threshold, left out of the scores). The labels are neither per direction nor "
        "per extent, though: both directions of a two-way road are often labelled where "
        "the car drove one, and arcs the car turned round in part way count as driven. "
        "So the table scores them as the track measures them "
        "(`geo.route_truth.measured_route_truth`): where the track passes a labelled arc with "
        "fixes at most 2 s apart, the furthest the car got along it in its direction in "
        "one pass decides. More than 15 m short of 80 % of the arc, or driven only the "
        "other way, it was not serviced; less short, it is too close to call and left "
        "out. Driven far enough, or where a gap between fixes could hide the drive "
        "(00000039, 00000026 and 00000046 have gaps of 10 to 22 s), the label stands. "
        "No speed, heading or blade data: position and time only, for both engines; "
        "targets applied as for ≤ 10 m noise (the real error is unknown, typically "
        "a few metres).",
        "",
        f"- {tracks.info}",
        "",
        *table(track_rows, tracks.rows),
        "",
        "The same runs scored against the labels as given (`geo.route_truth.route_truth`), "
        "so the correction can be judged:",
        "",
        "| pings | plowshare P | plowshare R | fmm P | fmm R |",
        "|---|---:|---:|---:|---:|",
        *label_rows(track_rows, tracks.rows),
        "",
    ]
    return "\n".join(lines)


def label_rows(
    rows: Sequence[tuple[str, int, float]], tallies: Mapping[tuple[str, str], Tally]
) -> list[str]:
    out = []
    for label, _, _ in rows:
        cells = []
        for engine in ("plowshare", "fmm"):
            t = tallies.get((label, engine + LABELS))
            cells.append("n/a | n/a" if t is None else f"{t.precision:.4f} | {t.recall:.4f}")
        out.append(f"| {label} | {' | '.join(cells)} |")
    return out


def track_intervals(quick: bool) -> tuple[int, ...]:
    return (1, 15, 60) if quick else INTERVALS


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
        out.write_text(text.rstrip("\n") + "\n" + _kept_sections(out))
        print(f"wrote {out}", file=sys.stderr)
    else:
        print(text)
    return 0


# Sections other benchmarks write into the same file (bench/import_speed.py's numbers):
# a re-run of this one replaces only its own part.
_KEPT_FROM = "## Street network import"


def _kept_sections(path: Path) -> str:
    old = path.read_text() if path.exists() else ""
    at = old.find(_KEPT_FROM)
    return "" if at < 0 else "\n" + old[at:]


if __name__ == "__main__":
    sys.exit(main())
