"""Honest coverage: which blocks a vehicle really serviced, from matched traversals.

A block counts as serviced by one *pass* — one vehicle driving it in one direction,
contiguously in time — covering at least ``min_fraction`` of its length with the blade
down or the spreader on. Summing scraps of several passes would turn a plow that
nosed into a street at every intersection, or turned round halfway, into "plowed";
that is the complaint every city tracker gets, so this module never does it.
"""

from __future__ import annotations

import gc
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from geo.match import MatchConfig, Matcher, Ping, Traversal
from geo.network import Segment

# Pieces of one pass arrive back to back; a longer pause means the vehicle left and
# came back (or the track was split), which is a new pass.
PASS_JOIN_S = 30.0

Interval = tuple[float, float]


@dataclass(frozen=True, slots=True)
class ServiceEvent:
    """A pass just reached ``min_fraction``: the block is serviced (emitted once per pass)."""

    source_id: str
    forward: bool
    vehicle: str
    t_start: float
    t_end: float
    fraction: float
    plowed: bool
    salted: bool
    confidence: float


@dataclass(frozen=True, slots=True)
class PassRecord:
    """Evidence: one vehicle's pass over one block in one direction."""

    source_id: str
    forward: bool
    vehicle: str
    t_start: float
    t_end: float
    fraction: float  # of the block's length covered while servicing
    driven_fraction: float  # covered at all, blade up included
    plowed: bool
    salted: bool
    serviced: bool  # fraction reached min_fraction
    confidence: float


@dataclass(frozen=True, slots=True)
class SegmentCoverage:
    source_id: str
    covered: bool
    covered_fraction: float  # best single servicing pass, either direction
    passes: int  # servicing passes that reached min_fraction
    first_service: float | None  # when the first such pass reached it
    last_service: float | None  # when the last such pass ended
    plowed: bool
    salted: bool


@dataclass(slots=True)
class _Pass:
    source_id: str
    forward: bool
    vehicle: str
    length: float
    t_start: float
    t_end: float
    driven: list[Interval] = field(default_factory=list)
    plow: list[Interval] = field(default_factory=list)
    salt: list[Interval] = field(default_factory=list)
    service: list[Interval] = field(default_factory=list)
    conf_m: float = 0.0  # confidence x metres of service traversals
    service_m: float = 0.0
    reached_at: float | None = None

    def fraction(self, intervals: list[Interval]) -> float:
        if self.length <= 0:
            return 1.0 if intervals else 0.0
        return min(sum(b - a for a, b in intervals) / self.length, 1.0)

    def flags(self, min_fraction: float) -> tuple[bool, bool]:
        """(plowed, salted): each treatment that covered the pass; a mixed pass both."""
        plow, salt = self.fraction(self.plow), self.fraction(self.salt)
        if plow >= min_fraction or salt >= min_fraction:
            return plow >= min_fraction, salt >= min_fraction
        return plow > 0, salt > 0

    def record(self, min_fraction: float) -> PassRecord:
        plowed, salted = self.flags(min_fraction)
        return PassRecord(
            self.source_id, self.forward, self.vehicle, self.t_start, self.t_end,
            self.fraction(self.service), self.fraction(self.driven), plowed, salted,
            self.reached_at is not None,
            self.conf_m / self.service_m if self.service_m > 0 else 0.0,
        )


def _merge(intervals: list[Interval], lo: float, hi: float) -> None:
    """Insert [lo, hi] into a sorted list of disjoint intervals, in place."""
    if not intervals:
        intervals.append((lo, hi))
        return
    a, b = intervals[-1]
    if lo >= a:
        # Pieces of a pass forward mostly arrive in order: only the end changes.
        if lo <= b:
            intervals[-1] = (a, max(b, hi))
        else:
            intervals.append((lo, hi))
        return
    out: list[Interval] = []
    placed = False
    for a, b in intervals:
        if b < lo:
            out.append((a, b))
        elif a > hi:
            if not placed:
                out.append((lo, hi))
                placed = True
            out.append((a, b))
        else:
            lo, hi = min(lo, a), max(hi, b)
    if not placed:
        out.append((lo, hi))
    intervals[:] = out


class CoverageBook:
    """Accumulates traversals of many vehicles into passes and service events."""

    def __init__(self, segments: Sequence[Segment], min_fraction: float = 0.8, *,
                 keep_history: bool = True) -> None:
        """``keep_history=False`` keeps only each vehicle's current pass: a live worker
        that runs all winter stores the service events and needs nothing older, so its
        memory stays bounded by the fleet; ``passes`` and ``result`` are then refused.
        """
        if not 0.0 < min_fraction <= 1.0:
            raise ValueError("min_fraction must be in (0, 1]")
        self.min_fraction = min_fraction
        self.keep_history = keep_history
        self._length = {s.source_id: s.length_m for s in segments}
        self._passes: dict[str, list[_Pass]] = {}  # only blocks driven so far
        self._open: dict[str, _Pass] = {}  # per vehicle, the pass it is on

    def add(self, traversals: Iterable[Traversal]) -> list[ServiceEvent]:
        """Book traversals (per vehicle in time order); returns passes that just qualified."""
        events: list[ServiceEvent] = []
        for tr in traversals:
            ev = self._add(tr)
            if ev is not None:
                events.append(ev)
        return events

    def _add(self, tr: Traversal) -> ServiceEvent | None:
        length = self._length.get(tr.source_id)
        if length is None:
            raise KeyError(f"traversal of unknown segment {tr.source_id!r}")
        cur = self._open.get(tr.vehicle)
        if (cur is None or cur.source_id != tr.source_id or cur.forward != tr.forward
                or tr.t_start - cur.t_end > PASS_JOIN_S or tr.t_end < cur.t_start):
            cur = _Pass(tr.source_id, tr.forward, tr.vehicle, length, tr.t_start, tr.t_end)
            self._open[tr.vehicle] = cur
            if self.keep_history:
                self._passes.setdefault(tr.source_id, []).append(cur)
        cur.t_end = max(cur.t_end, tr.t_end)
        lo, hi = tr.start_m, tr.end_m
        _merge(cur.driven, lo, hi)
        servicing = tr.plow is not False or tr.spreader is True
        if not servicing:
            return None
        _merge(cur.service, lo, hi)
        if tr.plow is not False:
            _merge(cur.plow, lo, hi)
        if tr.spreader is True:
            _merge(cur.salt, lo, hi)
        cur.conf_m += tr.confidence * (hi - lo)
        cur.service_m += hi - lo
        if cur.reached_at is not None or cur.service_m < self.min_fraction * length:
            return None  # (metres credited, overlaps included, bound the union)
        fraction = cur.fraction(cur.service)
        if fraction < self.min_fraction:
            return None
        cur.reached_at = tr.t_end
        plowed, salted = cur.flags(self.min_fraction)
        return ServiceEvent(tr.source_id, tr.forward, tr.vehicle, cur.t_start, tr.t_end,
                            fraction, plowed, salted, cur.conf_m / cur.service_m)

    def passes(self, source_id: str) -> list[PassRecord]:
        """Every pass over the block so far (serviced or not), in booking order."""
        self._need_history()
        return [p.record(self.min_fraction) for p in self._passes.get(source_id, ())]

    def result(self) -> dict[str, SegmentCoverage]:
        """Coverage of every segment of the network, serviced or not."""
        self._need_history()
        out: dict[str, SegmentCoverage] = {}
        for sid in self._length:
            passes = self._passes.get(sid)
            if not passes:
                # Most blocks of a town see no truck in a run: keep this path cheap.
                out[sid] = SegmentCoverage(sid, False, 0.0, 0, None, None, False, False)
                continue
            best = 0.0
            served = [p for p in passes if p.reached_at is not None]
            plowed = salted = False
            for p in passes:
                best = max(best, p.fraction(p.service))
            for p in served:
                pf, sf = p.flags(self.min_fraction)
                plowed, salted = plowed or pf, salted or sf
            out[sid] = SegmentCoverage(
                source_id=sid,
                covered=bool(served),
                covered_fraction=best,
                passes=len(served),
                first_service=min((p.reached_at for p in served if p.reached_at is not None),
                                  default=None),
                last_service=max((p.t_end for p in served), default=None),
                plowed=plowed,
                salted=salted,
            )
        return out


    def _need_history(self) -> None:
        if not self.keep_history:
            raise RuntimeError("this CoverageBook keeps no history (keep_history=False)")


def compute_coverage(
    segments: Sequence[Segment],
    pings: Iterable[Ping],
    *,
    min_fraction: float = 0.8,
    config: MatchConfig | None = None,
) -> dict[str, SegmentCoverage]:
    """Offline coverage of a batch of pings from any number of vehicles."""
    return match_batch(Matcher(segments, config), pings, min_fraction=min_fraction)


def match_batch(
    matcher: Matcher, pings: Iterable[Ping], *, min_fraction: float = 0.8
) -> dict[str, SegmentCoverage]:
    """``compute_coverage`` on a network already set up (the benchmarks time this half)."""
    book = CoverageBook(matcher.segments, min_fraction)
    by_vehicle: dict[str, list[Ping]] = {}
    for p in pings:
        by_vehicle.setdefault(p.vehicle, []).append(p)
    with existing_objects_frozen():
        for vehicle in sorted(by_vehicle):
            track = matcher.track(vehicle)
            fixes = sorted(by_vehicle[vehicle], key=lambda p: p.t)
            book.add(track.push_many(fixes))
            book.add(track.flush())
        return book.result()


@contextmanager
def existing_objects_frozen() -> Iterator[None]:
    """Keep Python's cycle collector off every object that exists before a batch.

    The network and the input pings are hundreds of thousands of objects that live
    through the whole batch, and each full collection the matcher's own allocations
    trigger walks all of them again: measured on Baltimore (6 plows x 2 h, 10 m), a
    fifth of matching time at 1 s and a quarter at 60 s. ``gc.freeze`` sets them aside
    for the batch and ``gc.unfreeze`` hands them back after. It is process-wide, so
    it suits batch work (the offline command), not threads of a server.
    """
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
