"""``plowshare simulate --csv``: a simulated storm as PINGS.csv plus its true coverage.

No database and no broker: streets come from a file, plows drive the simulator's
dense (<= 1 s), noiseless route, truth is computed from that, and only then are the
pings thinned to the reporting interval and degraded (dropouts, noise, outliers).
The same ``--seed`` drives the same routes whatever the interval or noise, so runs
that differ only in degradation are directly comparable.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
from datetime import UTC, datetime
from pathlib import Path

from app.sim_csv import write_pings_csv, write_truth_csv
from app.streets.load import load_segments
from geo.degrade import add_outliers, drop_out, jitter_motion
from geo.graph import StreetGraph
from geo.simulate import SimFix, add_noise, drive
from geo.truth import serviced_ids, simulated_truth

DEFAULT_START = datetime(2025, 1, 15, 4, 0, tzinfo=UTC)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="plowshare simulate",
        description="Simulate plows on a street file; write PINGS.csv and the true coverage.",
    )
    p.add_argument("--csv", required=True, type=Path, help="pings CSV to write")
    p.add_argument("--truth", required=True, type=Path, help="truth CSV to write")
    p.add_argument("--streets", required=True, type=Path, help=".osm.pbf, .osm[.gz] or GeoJSON")
    p.add_argument("--vehicles", type=int, default=3)
    p.add_argument("--interval", type=float, default=5.0, help="seconds between pings")
    p.add_argument("--noise", type=float, default=0.0, help="GPS error sigma, metres")
    p.add_argument("--dropout", type=float, default=0.0, help="share of pings lost")
    p.add_argument(
        "--burst", type=float, default=1.0, help="mean pings lost per dropout (default 1)"
    )
    p.add_argument("--outliers", type=float, default=0.0, help="share of pings 100-400 m off")
    p.add_argument("--speed-noise", type=float, default=0.0, help="reported speed error sigma, m/s")
    p.add_argument(
        "--heading-noise", type=float, default=0.0, help="reported heading error sigma, degrees"
    )
    p.add_argument("--duration", type=float, default=3600.0, help="seconds of plowing")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--min-fraction", type=float, default=0.8)
    p.add_argument(
        "--start", type=_utc, default=DEFAULT_START, help="ISO 8601 start (default %(default)s)"
    )
    p.add_argument("--no-plow", action="store_true", help="leave out the plow column")
    return p


def _utc(text: str) -> datetime:
    when = datetime.fromisoformat(text)
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _check(args: argparse.Namespace) -> str | None:
    if args.vehicles < 1:
        return "--vehicles must be at least 1"
    if not (args.interval > 0 and math.isfinite(args.interval)):
        return "--interval must be a positive number of seconds"
    if not (args.duration >= 0 and math.isfinite(args.duration)):
        return "--duration must be >= 0"
    if args.noise < 0:
        return "--noise must be >= 0"
    if not 0 <= args.dropout < 1:
        return "--dropout must be in [0, 1)"
    if not 0 <= args.outliers <= 1:
        return "--outliers must be in [0, 1]"
    if args.speed_noise < 0 or args.heading_noise < 0:
        return "--speed-noise and --heading-noise must be >= 0"
    if not 0 < args.min_fraction <= 1:
        return "--min-fraction must be in (0, 1]"
    if not args.streets.is_file():
        return f"streets file {args.streets} not found"
    return None


def simulate_fleet(
    graph: StreetGraph,
    *,
    vehicles: int,
    duration_s: float,
    interval_s: float,
    seed: int,
    start: datetime = DEFAULT_START,
    straight: float = 1.0,
) -> tuple[dict[str, list[SimFix]], dict[str, list[SimFix]]]:
    """(dense fixes for truth, noiseless fixes at ``interval_s``) per vehicle.

    The dense clock divides ``interval_s`` into whole steps of at most 1 s, so the
    reported pings are exact members of the dense drive.
    """
    steps = max(1, math.ceil(interval_s - 1e-9))
    dense_s = interval_s / steps
    dense: dict[str, list[SimFix]] = {}
    sparse: dict[str, list[SimFix]] = {}
    for i in range(vehicles):
        name = f"plow{i + 1:02d}"
        # One seeded stream per vehicle: adding a vehicle never changes the others.
        rng = random.Random(f"drive:{seed}:{i}")
        fixes = drive(graph, rng, duration_s=duration_s, interval_s=dense_s, start_time=start,
                      straight=straight)
        dense[name] = fixes
        sparse[name] = fixes[::steps]
    return dense, sparse


def degrade_fleet(
    fixes_by_vehicle: dict[str, list[SimFix]],
    *,
    seed: int,
    noise_m: float = 0.0,
    dropout: float = 0.0,
    burst: float = 1.0,
    outliers: float = 0.0,
    speed_sigma_mps: float = 0.0,
    heading_sigma_deg: float = 0.0,
) -> dict[str, list[SimFix]]:
    """Dropouts, then position noise, outliers and speed/heading errors, per vehicle."""
    out: dict[str, list[SimFix]] = {}
    for k, (name, fixes) in enumerate(fixes_by_vehicle.items()):
        rng = random.Random(f"degrade:{seed}:{k}")
        kept = drop_out(fixes, rng, dropout, burst)
        kept = add_noise(kept, rng, noise_m)
        kept = add_outliers(kept, rng, outliers)
        if speed_sigma_mps or heading_sigma_deg:
            # Own stream, so turning motion noise on leaves the positions as they were.
            motion_rng = random.Random(f"motion:{seed}:{k}")
            kept = jitter_motion(kept, motion_rng, speed_sigma_mps, heading_sigma_deg)
        out[name] = kept
    return out


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse already printed why
        return int(exc.code or 0)
    problem = _check(args)
    if problem is not None:
        print(f"plowshare simulate: {problem}", file=sys.stderr)
        return 2
    try:
        segments = load_segments(args.streets)
    except (OSError, ValueError, RuntimeError) as exc:
        print(f"plowshare simulate: cannot read streets {args.streets}: {exc}", file=sys.stderr)
        return 2
    graph = StreetGraph(segments)
    try:
        dense, sparse = simulate_fleet(
            graph,
            vehicles=args.vehicles,
            duration_s=args.duration,
            interval_s=args.interval,
            seed=args.seed,
            start=args.start,
        )
        truth = simulated_truth(graph, dense, min_fraction=args.min_fraction)
        pings = degrade_fleet(
            sparse,
            seed=args.seed,
            noise_m=args.noise,
            dropout=args.dropout,
            burst=args.burst,
            outliers=args.outliers,
            speed_sigma_mps=args.speed_noise,
            heading_sigma_deg=args.heading_noise,
        )
    except ValueError as exc:
        print(f"plowshare simulate: {exc}", file=sys.stderr)
        return 2
    try:
        rows = write_pings_csv(pings, args.csv, with_plow=not args.no_plow)
        write_truth_csv(truth, args.truth)
    except OSError as exc:
        print(f"plowshare simulate: cannot write output: {exc}", file=sys.stderr)
        return 2
    served = serviced_ids(truth)
    km = sum(truth[s].length_m for s in served) / 1000
    print(
        f"{args.vehicles} vehicles, {rows} pings -> {args.csv}; "
        f"{len(served)} of {len(truth)} segments truly serviced ({km:.1f} km) -> {args.truth}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
