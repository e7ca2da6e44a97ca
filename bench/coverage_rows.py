"""The coverage benchmark's vocabulary: its rows, tallies, constants and real tracks.

Shared by the runner (``bench.coverage``) and the report (``bench.coverage_report``).
"""

from __future__ import annotations

import csv
import gzip
import json
import math
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import shapely

from app.streets.load import load_segments
from geo.degrade import on_schedule
from geo.network import Segment
from geo.projection import LocalProjection
from geo.route_truth import NEAR_M, MeasuredTruth, measured_route_truth, route_truth
from geo.simulate import SimFix
from geo.truth import TrueCoverage

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


# Engine names of the rows scored against the data set's labels as given.
LABELS = "/labels"
# ... and of fastmm's rows with its blade changes read generously (bench.blade_rule).
EITHER = "/either"


def track_intervals(quick: bool) -> tuple[int, ...]:
    return (1, 15, 60) if quick else INTERVALS




@dataclass(frozen=True, slots=True)
class Phase:
    """A track as one k-second schedule sends it, and the truth for what it saw."""

    fixes: list[SimFix]
    labels: dict[str, TrueCoverage]
    measured: MeasuredTruth


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
    # When (epoch s) the car was within NEAR_M of each route arc it was seen on ...
    near: dict[str, tuple[float, ...]]
    # ... and for route arcs no fix came near (driven in a gap between fixes), the
    # gap (its two fixes' times) whose straight line passes nearest them.
    hidden: dict[str, tuple[float, float]]

    def phases(self, every_s: int) -> Iterator[Phase]:
        """The track as a tracker on a fixed ``every_s``-second schedule would send it,
        once for each of the ``every_s`` possible schedules (starting 0, 1, ... s after
        the first fix), each scored on the drive between its first and last fix.

        One subsample per interval is a small, lucky or unlucky sample at 60 s (a
        hundred-odd pings over six tracks). Each schedule sends the first fix of each
        of its slots (a fix at its time, or the first one after it when none was at
        hand), so the schedules split the fixes between them; only a fix that follows
        a pause (over 1 s since the one before) can fall to several. Each subsample
        sees the drive only from its first fix to its last, so its truth is measured
        on that part: the arcs at its ends by the part driven within it, and route
        arcs the car was near only outside it, or drove in a gap outside it, left out
        (serviced=None), not counted missed.
        """
        times = [f.time.timestamp() for f in self.fixes]
        for phase in range(every_s):
            kept = [self.fixes[i] for i in on_schedule(times, times[0] + phase, every_s)]
            if len(kept) < 2:
                continue
            if kept[0] is self.fixes[0] and kept[-1] is self.fixes[-1]:
                yield Phase(kept, self.labels, self.measured)
                continue
            ta, tb = kept[0].time.timestamp(), kept[-1].time.timestamp()
            inside = [f for f, t in zip(self.fixes, times, strict=True) if ta <= t <= tb]
            outside = {a for a, ts in self.near.items() if not any(ta <= t <= tb for t in ts)}
            outside |= {a for a, (t1, t2) in self.hidden.items() if not ta <= t1 < t2 <= tb}
            labels, measured = _truths(self.segments, self.route - outside, inside)
            for a in outside:
                gone = TrueCoverage(a, labels[a].length_m, 0.0, None)
                labels[a] = measured.truth[a] = gone
            yield Phase(kept, labels, measured)


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
    labels, measured = _truths(segments, route, fixes)
    return Track(segments, fixes, route, labels, measured, *_near_times(segments, route, fixes))


def _truths(segments: list[Segment], route: set[str], fixes: list[SimFix]
            ) -> tuple[dict[str, TrueCoverage], MeasuredTruth]:
    labels = route_truth(
        segments, route, [(f.lon, f.lat) for f in fixes], min_fraction=MIN_FRACTION
    )
    timed = [(f.lon, f.lat, f.time.timestamp()) for f in fixes]
    return labels, measured_route_truth(segments, route, timed, min_fraction=MIN_FRACTION)


def _near_times(segments: list[Segment], route: set[str], fixes: list[SimFix]
                ) -> tuple[dict[str, tuple[float, ...]], dict[str, tuple[float, float]]]:
    """(``Track.near``, ``Track.hidden``)."""
    proj = LocalProjection.around((f.lon, f.lat) for f in fixes)
    xs, ys = proj.to_xy([f.lon for f in fixes], [f.lat for f in fixes])
    points = shapely.points(xs, ys)
    times = np.array([f.time.timestamp() for f in fixes])
    jumps = np.flatnonzero(np.diff(times) > 1.5)  # fix k to k + 1 is a gap
    chords = shapely.linestrings(
        [[(xs[k], ys[k]), (xs[k + 1], ys[k + 1])] for k in jumps.tolist()])
    near: dict[str, tuple[float, ...]] = {}
    hidden: dict[str, tuple[float, float]] = {}
    for s in segments:
        if s.source_id not in route:
            continue
        lx, ly = proj.to_xy([c[0] for c in s.coords], [c[1] for c in s.coords])
        line = shapely.linestrings(np.column_stack((lx, ly)))
        seen = times[shapely.distance(points, line) <= NEAR_M]
        if len(seen):
            near[s.source_id] = tuple(seen.tolist())
        elif len(jumps):
            k = int(jumps[int(np.argmin(shapely.distance(chords, line)))])
            hidden[s.source_id] = (float(times[k]), float(times[k + 1]))
    return near, hidden
