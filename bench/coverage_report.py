"""The coverage benchmark's report: BENCHMARKS.md from the pooled tallies."""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

from bench.coverage_rows import (
    EITHER,
    HEADING_SIGMA_DEG,
    LABELS,
    REPO,
    SPEED_SIGMA_MPS,
    JobResult,
    Scenario,
    Tally,
    scenarios,
    track_intervals,
)


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


def generous_table(scs: Sequence[Scenario], pooled: Mapping[tuple[str, str], Tally]
                   ) -> list[str]:
    """fastmm's simulated rows with the shared blade rule and read generously."""
    out = [
        "### fastmm's paths, blade read generously",
        "",
        "The same fastmm paths as above, but where the blade went up or down between two "
        "pings the whole step is credited when either ping had it down (`bench.blade_rule`, "
        '"either"). The two readings differ only on steps where the blade changed '
        "between the pings, so the gap grows with the interval. plowshare does not read "
        "its own blade that way: it would mark deadheading over unplowed streets next to "
        "a change as plowed.",
        "",
        "| pings | plowshare P | plowshare R | fmm P | fmm R | fmm P, generous | "
        "fmm R, generous |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for sc in scs:
        ours, fm = pooled.get((sc.label, "plowshare")), pooled.get((sc.label, "fmm"))
        wide = pooled.get((sc.label, "fmm" + EITHER))
        if fm is None or wide is None or not sc.sensors:
            continue
        left = "n/a | n/a" if ours is None else f"{ours.precision:.4f} | {ours.recall:.4f}"
        out.append(f"| {sc.label} | {left} | {fm.precision:.4f} | {fm.recall:.4f} "
                   f"| {wide.precision:.4f} | {wide.recall:.4f} |")
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
_OURS = ("bench/coverage.py", "bench/fmm_baseline.py", "bench/blade_rule.py",
         "app/sim_offline.py")


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
        "less its UBODT precomputation; both with the objects that exist before the run "
        "set aside from Python's cycle collector, as `compute_coverage` does). "
        "One-off set-up, plowshare / fastmm: "
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
        "and its path is credited by the same blade rule as plowshare's "
        "(`bench.blade_rule`): where the blade went up or down between two pings, the "
        "change is put at one intersection (down on streets that vehicle has not "
        "cleared yet, up on those it has; the middle when it knows neither) and only "
        "the blade-down side counts. So the comparison measures the matching, not two "
        "ways of reading the blade; the last table below gives fastmm's figures read "
        "generously instead. "
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
        "missed at 30-60 s is mostly route the truck drove between two pings that is not "
        "the shortest way between them (the simulated plows wander block by block), which "
        "a matcher that joins its states by the shortest route cannot credit. "
        "`bench.route_ceiling` measures that ceiling without any matcher (the section "
        "at the end).",
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
    lines += ["", *generous_table(scs, pooled)]
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
        "Each interval k is taken k times, as a tracker on a fixed k-second schedule "
        "would send the track, starting 0, 1, ... k-1 s after its first fix (the first "
        "fix of each slot: at its time, or the first after it when none was at hand), "
        "pooled: at 60 s, 60 subsamples. The schedules split the fixes between them; "
        "only a fix that follows a pause (over 1 s since the one before) can fall to "
        "several. Each subsample sees the drive only from its first fix to its last, "
        "and is scored on that part "
        "(`bench.coverage_rows.Track.phases`): its first and last arcs by the part "
        "driven within it, and labelled arcs the car came within 20 m of only before or "
        "after it, or drove in a gap before or after it, left out rather than counted "
        "missed.",
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


# Sections other benchmarks write into the same file (bench/import_speed.py's numbers):
# a re-run of this one replaces only its own part.
_KEPT_FROM = "## Street network import"


def kept_sections(path: Path) -> str:
    old = path.read_text() if path.exists() else ""
    at = old.find(_KEPT_FROM)
    return "" if at < 0 else "\n" + old[at:]


