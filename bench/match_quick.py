"""Quick accuracy and speed check of the matcher while tuning it (seconds, not minutes).

Same truth and same pings as ``bench/coverage.py`` (``geo.truth``, ``app.sim_offline``),
without fastmm, on the networks and intervals you name. Prints length-weighted
precision/recall of serviced blocks and pings per CPU-second (process time, so other
load on a shared machine does not distort it) once the network is set up.

    .venv/bin/python -m bench.match_quick                      # Krems + 6 tracks
    .venv/bin/python -m bench.match_quick --towns krems porto --intervals 15 60 -v
    .venv/bin/python -m bench.match_quick --set beta_m=6 --set lag=12   # try a config
    .venv/bin/python -m bench.match_quick --lack 0.05 --tracks     # a map with gaps
    .venv/bin/python -m bench.match_quick --straight 3 --tracks    # plows turning less

``--lack F`` takes a seeded share F of the blocks out of the map the matcher gets,
while the plows still drive all of them (real maps lack roads, and real track
00000075's map lacks a connector); blocks not in the map are not scored.
"""

from __future__ import annotations

import argparse
import random
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import fields

from app.sim_offline import degrade_fleet, simulate_fleet
from app.streets.load import load_segments
from bench.coverage_rows import NETWORKS, TRACKS, load_track, shared_data
from geo.coverage import match_batch
from geo.graph import StreetGraph
from geo.match import MatchConfig, Matcher, Ping
from geo.simulate import SimFix
from geo.truth import TrueCoverage, simulated_truth

DATA = shared_data()
TOWNS = NETWORKS


class Tally:
    def __init__(self) -> None:
        self.hit = self.said = self.true = 0.0
        self.pings = 0
        self.secs = 0.0
        self.misses: list[str] = []
        self.extras: list[str] = []

    def add(self, covered: set[str], truth: dict[str, TrueCoverage], n: int, s: float) -> None:
        for sid, t in truth.items():
            if t.serviced is None:
                continue
            if sid in covered:
                self.said += t.length_m
                if t.serviced:
                    self.hit += t.length_m
                else:
                    self.extras.append(sid)
            if t.serviced:
                self.true += t.length_m
                if sid not in covered:
                    self.misses.append(sid)
        self.pings += n
        self.secs += s

    def line(self) -> str:
        p = self.hit / self.said if self.said else 1.0
        r = self.hit / self.true if self.true else 1.0
        rate = self.pings / max(self.secs, 1e-9)
        return f"P {p:.4f}  R {r:.4f}  {self.pings:6d} pings {rate:8,.0f}/s"


def run(matcher: Matcher, pings: list[Ping]) -> tuple[set[str], float]:
    t0 = time.process_time()
    covered = {sid for sid, c in match_batch(matcher, pings).items() if c.covered}
    return covered, time.process_time() - t0


def sim_pings(fixes: dict[str, list[SimFix]], noise: float, sensors: bool) -> list[Ping]:
    return [
        Ping(v, f.time.timestamp(), f.lon, f.lat, f.speed_mps, f.heading_deg, noise, f.plow)
        if sensors
        else Ping(v, f.time.timestamp(), f.lon, f.lat)
        for v, seq in fixes.items()
        for f in seq
    ]


def towns(
    names: Sequence[str],
    intervals: Sequence[int],
    cfg: MatchConfig,
    noise: float,
    minutes: float,
    vehicles: int,
    sensors: bool,
    verbose: bool,
    lack: float = 0.0,
    straight: float = 1.0,
) -> None:
    pooled = {iv: Tally() for iv in intervals}
    for name in names:
        segments = load_segments(DATA / "osm" / TOWNS[name])
        graph = StreetGraph(segments)
        rng = random.Random(11)
        mapped = [s for s in segments if rng.random() >= lack]
        t0 = time.process_time()
        matcher = Matcher(mapped, cfg)
        print(f"{name}: {len(mapped)} of {len(segments)} blocks in the map, "
              f"set-up {time.process_time() - t0:.2f} s")
        dense, _ = simulate_fleet(
            graph, vehicles=vehicles, duration_s=minutes * 60, interval_s=1.0, seed=7,
            straight=straight,
        )
        ids = {s.source_id for s in mapped}
        truth = {k: t for k, t in simulated_truth(graph, dense).items() if k in ids}
        for k, iv in enumerate(intervals):
            sparse = {v: f[::iv] for v, f in dense.items()}
            pings = sim_pings(degrade_fleet(sparse, seed=7000 + k, noise_m=noise), noise, sensors)
            tally = Tally()
            covered, secs = run(matcher, pings)
            tally.add(covered, truth, len(pings), secs)
            pooled[iv].add(covered, truth, len(pings), secs)
            print(f"  {iv:3d} s  {tally.line()}")
            if verbose:
                print(f"        extra {tally.extras[:12]}\n        missed {tally.misses[:12]}")
    if len(names) > 1:
        for iv, t in pooled.items():
            print(f"  towns {iv:3d} s  {t.line()}")


def tracks(ids: Sequence[str], intervals: Sequence[int], cfg: MatchConfig, verbose: bool) -> None:
    """Every interval as each of its schedules sends it, as bench/coverage.py scores
    them (``Track.phases``: the labels corrected where the dense track refutes them)."""
    tallies = {iv: Tally() for iv in intervals}
    for tid in ids:
        track = load_track(tid)
        # Times from the track's start, as the data set gives them.
        t0 = track.fixes[0].time.timestamp()
        matcher = Matcher(track.segments, cfg)
        for iv in intervals:
            one = Tally()
            for phase in track.phases(iv):
                kept = [Ping("car", f.time.timestamp() - t0, f.lon, f.lat)
                        for f in phase.fixes]
                covered, secs = run(matcher, kept)
                one.add(covered, phase.measured.truth, len(kept), secs)
                tallies[iv].add(covered, phase.measured.truth, len(kept), secs)
            if verbose:
                extras = Counter(one.extras).most_common(6)
                misses = Counter(one.misses).most_common(6)
                print(f"  {tid} {iv:3d} s  {one.line()}  extra {extras} missed {misses}")
    for iv, t in tallies.items():
        if t.pings:
            print(f"  tracks {iv:3d} s  {t.line()}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--towns", nargs="*", default=["krems"])
    ap.add_argument("--tracks", nargs="*", default=list(TRACKS))
    ap.add_argument("--intervals", type=int, nargs="*", default=[1, 5, 15, 30, 60])
    ap.add_argument("--noise", type=float, default=10.0)
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--vehicles", type=int, default=3)
    ap.add_argument("--no-sensors", action="store_true")
    ap.add_argument("--lack", type=float, default=0.0, help="share of blocks left out of the map")
    ap.add_argument("--straight", type=float, default=1.0,
                    help="simulated plows' weight for straight on (geo.simulate.drive)")
    ap.add_argument("--set", action="append", default=[], help="MatchConfig field=value")
    ap.add_argument("-v", action="store_true")
    a = ap.parse_args()
    kinds = {f.name: type(getattr(MatchConfig(), f.name)) for f in fields(MatchConfig)}
    overrides = {k: kinds[k](v) for k, v in (s.split("=", 1) for s in a.set)}
    cfg = MatchConfig(**overrides)
    towns(a.towns, a.intervals, cfg, a.noise, a.minutes, a.vehicles, not a.no_sensors, a.v,
          a.lack, a.straight)
    tracks(a.tracks, a.intervals, cfg, a.v)


if __name__ == "__main__":
    main()
