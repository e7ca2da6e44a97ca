"""Ground truth from a real GPS track and the arcs it is labelled to have driven.

* ``route_truth``: every route arc driven end to end, except the ones the track starts
  or ends on; see that function for how those are judged.
* ``measured_route_truth``: ``route_truth`` corrected where the dense track refutes
  the labels, which are neither per direction nor per extent (a two-way road driven
  one way, an arc turned round in part way); gaps between fixes keep the label.

Both return one ``geo.truth.TrueCoverage`` per segment, serviced when the fraction
reaches ``min_fraction``, the rule the coverage engine applies to its own estimate.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise

from geo.network import Coord, Segment
from geo.truth import (
    EARTH_RADIUS_M,
    TrueCoverage,
    metres_per_degree,
    offset_along,
    project_point,
)

# A pass this close to an arc has seen it (measured_route_truth's near_m).
NEAR_M = 20.0


def route_truth(
    segments: Sequence[Segment],
    route_ids: Iterable[str],
    track: Sequence[Coord],
    *,
    min_fraction: float = 0.8,
    unsure_m: float = 15.0,
) -> dict[str, TrueCoverage]:
    """True coverage from a real track and the set of arcs it really drove.

    Every route arc counts as driven end to end — except the arc the track starts on
    and the one it ends on, which the car may only have driven from the first fix
    onwards or up to the last fix. Their driven share is measured by projecting that
    fix onto the arc (the start arc is picked among route arcs near the first fix by
    agreeing with the direction of the first ~30 m of the track, the end arc likewise
    with the last ~30 m). If the driven length is within ``unsure_m`` (about two GPS
    errors) of the ``min_fraction`` threshold, the arc is too close to call and gets
    ``serviced=None``; otherwise the usual rule decides. Arcs off the route are not
    serviced. ``track`` is (lon, lat) in time order.
    """
    if not 0.0 < min_fraction <= 1.0:
        raise ValueError("min_fraction must be in (0, 1]")
    by_id = {s.source_id: s for s in segments}
    route = set(route_ids)
    missing = route - by_id.keys()
    if missing:
        raise ValueError(f"route arcs not in the network: {sorted(missing)[:5]}")
    driven: dict[str, float] = {sid: by_id[sid].length_m for sid in route}
    ends = _end_arcs(by_id, route, track)
    if ends is not None:
        start, end = ends
        s_seg, e_seg = by_id[start], by_id[end]
        s_off = offset_along(s_seg.coords, s_seg.length_m, *track[0])
        e_off = offset_along(e_seg.coords, e_seg.length_m, *track[-1])
        if start == end:
            # A round trip that starts and ends on one arc drove [s_off, end] first
            # and [0, e_off] last (a single pass is the larger); a short trip along
            # one arc drove [s_off, e_off].
            driven[start] = e_off - s_off if e_off > s_off else max(s_seg.length_m - s_off, e_off)
        else:
            driven[start] = s_seg.length_m - s_off
            driven[end] = e_off
        unsure = {start, end}
    else:
        unsure = set()
    out: dict[str, TrueCoverage] = {}
    for seg in segments:
        metres = driven.get(seg.source_id, 0.0)
        frac = 1.0 if seg.length_m <= 0.0 else min(max(metres / seg.length_m, 0.0), 1.0)
        serviced: bool | None = frac >= min_fraction
        if seg.source_id in unsure and abs(metres - min_fraction * seg.length_m) <= unsure_m:
            serviced = None
        out[seg.source_id] = TrueCoverage(seg.source_id, seg.length_m, frac, serviced)
    return out


def _end_arcs(
    by_id: Mapping[str, Segment], route: set[str], track: Sequence[Coord]
) -> tuple[str, str] | None:
    """The route arcs the track starts and ends on (None without track or route)."""
    if not track or not route:
        return None
    return (
        _end_arc(by_id, route, track, at_start=True),
        _end_arc(by_id, route, track, at_start=False),
    )


def _end_arc(
    by_id: Mapping[str, Segment], route: set[str], track: Sequence[Coord], *, at_start: bool
) -> str:
    pts = list(track) if at_start else list(reversed(track))
    here = pts[0]
    # A point ~30 m along the track gives the direction of travel at that end.
    ahead = next((p for p in pts[1:] if _dist_m(here, p) >= 30.0), pts[-1])
    moving = _dist_m(here, ahead) >= 5.0
    scored: list[tuple[float, str]] = []
    for sid in route:
        seg = by_id[sid]
        off = offset_along(seg.coords, seg.length_m, *here)
        dist = _dist_m(here, _point_at(seg, off))
        if moving:
            # At the start the car moves along the arc (ahead is further along); at the
            # end it arrived along it (the earlier point is further back).
            off2 = offset_along(seg.coords, seg.length_m, *ahead)
            along = off2 - off if at_start else off - off2
            if along < 0.0:
                dist += 50.0  # wrong direction: only chosen if nothing else is near
        scored.append((dist, sid))
    return min(scored)[1]


def _point_at(seg: Segment, offset_m: float) -> Coord:
    run = 0.0
    scale = seg.length_m
    lens = [_dist_m(p, q) for p, q in pairwise(seg.coords)]
    total = sum(lens) or 1.0
    target = offset_m * total / (scale or 1.0)
    for (p, q), d in zip(pairwise(seg.coords), lens, strict=True):
        if run + d >= target and d > 0.0:
            u = (target - run) / d
            return (p[0] + u * (q[0] - p[0]), p[1] + u * (q[1] - p[1]))
        run += d
    return seg.coords[-1]


def _dist_m(p: Coord, q: Coord) -> float:
    kx = math.cos(math.radians((p[1] + q[1]) / 2.0)) * math.radians(1.0) * EARTH_RADIUS_M
    ky = math.radians(1.0) * EARTH_RADIUS_M
    return math.hypot((q[0] - p[0]) * kx, (q[1] - p[1]) * ky)


# --- route truth corrected by the track ------------------------------------------------

# Densified track points are at most this far apart, so a fix just past an arc's end
# and the fix before it put points near that end even at speed.
_STEP_M = 2.0
# Grid cell of the densified track's spatial index.
_CELL_M = 50.0
# Speeds around a gap are taken from the dense steps this close to it.
_SPEED_WINDOW_S = 5.0


@dataclass(frozen=True, slots=True)
class MeasuredTruth:
    """``measured_route_truth``'s result: the truth and what the track changed."""

    truth: dict[str, TrueCoverage]
    # Route arcs the dense track shows were not serviced (driven the other way, or not
    # far enough in one pass), and those it makes too close to call.
    not_driven: frozenset[str]
    unsure: frozenset[str]
    # Route arcs the dense fixes alone would have refuted, kept because a gap in the
    # track could hide the missing part of the drive.
    kept_for_gap: frozenset[str]


def measured_route_truth(
    segments: Sequence[Segment],
    route_ids: Iterable[str],
    track: Sequence[tuple[float, float, float]],
    *,
    min_fraction: float = 0.8,
    unsure_m: float = 15.0,
    near_m: float = NEAR_M,
    far_m: float = 50.0,
    max_gap_s: float = 2.0,
    max_speed_mps: float = 40.0,
    max_accel_mps2: float = 4.0,
    jitter_m: float = 5.0,
) -> MeasuredTruth:
    """``route_truth``, with the labels corrected where the dense track refutes them.

    The gps-truth labels are neither per direction nor per extent: both directed arcs
    of a two-way road are often on the route although the car drove it one way, and
    an arc the car turned round in part way counts as driven. So every route arc
    (other than the start and end arcs, which ``route_truth`` already measures) is
    measured against the track, ``(lon, lat, t)`` in time order:

    * The track is densified: points every ~2 m on the straight line between two fixes
      at most ``max_gap_s`` apart. A step between fixes further apart is a gap.
    * A pass is a run of consecutive points within ``far_m`` of the arc (generous:
      some maps' arcs are straight chords of curved roads, 30 m off them). Its points
      are projected onto the arc, and a point beyond an end lands on that end, so a
      drive straight through measures the whole arc. The pass's advance is how far it
      got past the lowest offset it had reached before, in the arc's direction: a
      pass the other way measures one wobble of GPS jitter, never jitter summed.
    * A gap does not end a pass if the car could have reached the arc in it: at most
      ``max_speed_mps``, and no faster than it could accelerate (``max_accel_mps2``)
      from the speeds just before the gap and brake to those just after. The pass is
      then credited with as much of the arc as it could have driven meanwhile, so a
      gap refutes a label only where the drive could not have fit in it.
    * The label stands unless some pass comes within ``near_m`` of the arc and none,
      so credited, advances ``min_fraction`` of it. Otherwise the arc was not serviced
      when the best advance is more than ``unsure_m`` short of that threshold, or
      when the car never advanced along it beyond ``jitter_m`` but passed it the
      other way (a short two-way twin driven in the other direction); else it is too
      close to call (``serviced=None``, left out of scores). Its fraction is then the
      advance measured.

    Arcs off the route are not serviced, as in ``route_truth``.
    """
    if not 0.0 < min_fraction <= 1.0:
        raise ValueError("min_fraction must be in (0, 1]")
    route = set(route_ids)
    coords = [(lon, lat) for lon, lat, _ in track]
    base = route_truth(segments, route, coords, min_fraction=min_fraction, unsure_m=unsure_m)
    by_id = {s.source_id: s for s in segments}
    ends = _end_arcs(by_id, route, coords)
    if ends is None:
        return MeasuredTruth(base, frozenset(), frozenset(), frozenset())
    path = _DensePath(track, max_gap_s, max_speed_mps, max_accel_mps2)
    out = dict(base)
    not_driven: set[str] = set()
    unsure: set[str] = set()
    kept: set[str] = set()
    for sid in sorted(route - set(ends)):
        seg = by_id[sid]
        threshold = min_fraction * seg.length_m
        arc = [path.xy(lon, lat) for lon, lat in seg.coords]
        m = path.measure(arc, seg.length_m, near_m, far_m, 2.0 * jitter_m)
        if not m.seen or m.advance >= threshold:
            if m.seen and m.dense_advance < threshold:
                kept.add(sid)
            continue
        wrong_way = m.advance <= jitter_m and m.retreat >= threshold
        serviced = None if threshold - m.advance <= unsure_m and not wrong_way else False
        (unsure if serviced is None else not_driven).add(sid)
        frac = 0.0 if seg.length_m <= 0.0 else min(m.advance / seg.length_m, 1.0)
        out[sid] = TrueCoverage(sid, seg.length_m, frac, serviced)
    return MeasuredTruth(out, frozenset(not_driven), frozenset(unsure), frozenset(kept))


@dataclass(slots=True)
class _Measure:
    seen: bool = False  # some pass came within near_m
    advance: float = 0.0  # best advance along the arc, gaps credited
    dense_advance: float = 0.0  # the same from the dense points alone
    retreat: float = 0.0  # best distance driven against the arc, dense points only


@dataclass(frozen=True, slots=True)
class _Gap:
    a: tuple[float, float]
    b: tuple[float, float]
    reach_m: float  # furthest the car could have driven between the two fixes


class _DensePath:
    """A track in a local plane (metres), densified between fixes with no gap between
    them, with a grid index of its points and the gaps before some of them."""

    def __init__(
        self,
        track: Sequence[tuple[float, float, float]],
        max_gap_s: float,
        max_speed: float,
        max_accel: float,
    ) -> None:
        self._lon0, self._lat0 = track[0][0], track[0][1]
        self._kx, self._ky = metres_per_degree(self._lat0)
        fixes = [(*self.xy(lon, lat), t) for lon, lat, t in track]
        steps = [
            (a[2], b[2], math.hypot(b[0] - a[0], b[1] - a[1]) / max(b[2] - a[2], 1e-9))
            for a, b in pairwise(fixes)
        ]
        self.points: list[tuple[float, float]] = [fixes[0][:2]]
        self.gap_before: dict[int, _Gap] = {}  # point index -> gap between it and the last
        for k, (a, b) in enumerate(pairwise(fixes)):
            dt = b[2] - a[2]
            chord = math.hypot(b[0] - a[0], b[1] - a[1])
            if dt > max_gap_s:
                # Speed on either side, from the dense steps next to the gap.
                v0 = max([v for t0, t1, v in steps[:k] if a[2] - t1 <= _SPEED_WINDOW_S and
                          t1 - t0 <= max_gap_s], default=max_speed)  # fmt: skip
                v1 = max([v for t0, t1, v in steps[k + 1 :] if t0 - b[2] <= _SPEED_WINDOW_S
                          and t1 - t0 <= max_gap_s], default=max_speed)  # fmt: skip
                reach = max(chord, _reach_m(v0, v1, dt, max_speed, max_accel))
                self.gap_before[len(self.points)] = _Gap(a[:2], b[:2], reach)
                self.points.append(b[:2])
                continue
            n = max(1, math.ceil(chord / _STEP_M))
            for i in range(1, n + 1):
                u = i / n
                self.points.append((a[0] + u * (b[0] - a[0]), a[1] + u * (b[1] - a[1])))
        self._grid: dict[tuple[int, int], list[int]] = {}
        for k, (x, y) in enumerate(self.points):
            self._grid.setdefault((math.floor(x / _CELL_M), math.floor(y / _CELL_M)), []).append(k)

    def xy(self, lon: float, lat: float) -> tuple[float, float]:
        return (lon - self._lon0) * self._kx, (lat - self._lat0) * self._ky

    def measure(
        self,
        arc: Sequence[tuple[float, float]],
        length_m: float,
        near_m: float,
        far_m: float,
        slack_m: float,
    ) -> _Measure:
        xs = [p[0] for p in arc]
        ys = [p[1] for p in arc]
        i0, i1 = math.floor((min(xs) - far_m) / _CELL_M), math.floor((max(xs) + far_m) / _CELL_M)
        j0, j1 = math.floor((min(ys) - far_m) / _CELL_M), math.floor((max(ys) + far_m) / _CELL_M)
        cells = (self._grid.get((i, j), ()) for i in range(i0, i1 + 1) for j in range(j0, j1 + 1))
        todo = {k for ks in cells for k in ks}  # all points within far_m of the arc
        planar = sum(math.hypot(b[0] - a[0], b[1] - a[1]) for a, b in pairwise(arc))
        scale = length_m / planar if planar > 0.0 else 0.0
        # Gaps in which the car could have come within far_m of the arc.
        gaps: dict[int, tuple[float, float, float, float, float]] = {}
        for k, gap in self.gap_before.items():
            reach = gap.reach_m + slack_m
            mx, my = (gap.a[0] + gap.b[0]) / 2.0, (gap.a[1] + gap.b[1]) / 2.0
            pad = reach / 2.0 + far_m
            if min(xs) > mx + pad or max(xs) < mx - pad or min(ys) > my + pad or max(ys) < my - pad:
                continue
            da, pa = project_point(arc, gap.a)
            db, pb = project_point(arc, gap.b)
            if max(da - far_m, 0.0) + max(db - far_m, 0.0) <= reach:
                gaps[k] = (da, pa * scale, db, pb * scale, reach)
                todo.update((k - 1, k))
        m = _Measure()
        lo = hi = dense_lo = math.nan  # lowest / highest offset of the current pass so far
        prev = -2
        for k in sorted(todo):
            live = k == prev + 1 and not math.isnan(lo)
            prev = k
            if not live or k in self.gap_before:
                hi = dense_lo = math.nan  # dense measures restart after a gap
            if k in gaps:
                # In projected offsets, the car went from pa to pb driving at most
                # `reach`: it got at most to `top` and down to `bottom` on the way, and
                # advanced along the arc by at most `within` (less if it was off it).
                da, pa, db, pb, reach = gaps[k]
                top = min(length_m, (reach + pa + pb) / 2.0)
                bottom = max(0.0, (pa + pb - reach) / 2.0)
                within = min(
                    length_m,
                    (reach - abs(pa - pb)) / 2.0 + max(0.0, pb - pa),
                    reach - max(da - far_m, 0.0) - max(db - far_m, 0.0),
                )
                m.advance = max(m.advance, within, top - lo if live else 0.0)
                lo = min(lo, bottom) if live else bottom
            elif not live or k in self.gap_before:
                lo = math.nan
            dist, off = project_point(arc, self.points[k])
            if dist > far_m:
                lo = hi = dense_lo = math.nan  # the car left the arc
                continue
            off *= scale
            m.seen = m.seen or dist <= near_m
            lo = off if math.isnan(lo) else min(lo, off)
            dense_lo = off if math.isnan(dense_lo) else min(dense_lo, off)
            hi = off if math.isnan(hi) else max(hi, off)
            m.advance = max(m.advance, off - lo)
            m.dense_advance = max(m.dense_advance, off - dense_lo)
            m.retreat = max(m.retreat, hi - off)
        return m


def _reach_m(v0: float, v1: float, dt: float, max_speed: float, max_accel: float) -> float:
    """Furthest a car doing ``v0`` and, ``dt`` seconds later, ``v1`` can have driven:
    speeding up from one and braking to the other at ``max_accel``, within
    ``max_speed``."""
    n = 50
    h = dt / n
    return sum(
        min(max_speed, v0 + max_accel * t, v1 + max_accel * (dt - t)) * h
        for t in ((i + 0.5) * h for i in range(n))
    )
