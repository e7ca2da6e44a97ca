"""Ground truth for coverage benchmarks: which blocks were really serviced.

Two sources of truth:

* ``simulated_truth``: the simulator's own fixes, which record the block, direction
  and blade state at every instant. From a dense (<= 1 s), noiseless drive this gives,
  per block, the largest share of its length driven with the blade down in a single
  pass. Degrade a *copy* of the fixes (``geo.degrade``) for the matcher; never compute
  truth from the degraded ones.
* ``geo.route_truth``: a real GPS track with the list of arcs the car really drove
  (the gps-truth data set), as labelled and as measured from the track.

Both return one ``TrueCoverage`` per segment, serviced when the fraction reaches
``min_fraction`` — the same rule the coverage engine applies to its own estimate.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise

from geo.graph import Edge, StreetGraph
from geo.network import Coord
from geo.simulate import MAX_SPEED_MPS, SimFix, class_speed_mps

# Fix spacing up to which every block the truck drove between two fixes can be
# recovered from the graph: at 12 m/s at most ~12 m of blocks are hidden per second.
MAX_GAP_S = 1.0
EARTH_RADIUS_M = 6_371_008.8
# Chain search between two fixes stops at this many hidden blocks; a second of driving
# never crosses more than a handful, and the bound keeps a bad input from exploding.
_MAX_HIDDEN_BLOCKS = 12


@dataclass(frozen=True, slots=True)
class TrueCoverage:
    source_id: str
    length_m: float
    # Largest share of the block covered in one pass with the blade down (either
    # direction); 0 for blocks never driven.
    fraction: float
    # fraction >= min_fraction. None: too close to call (the partial first/last arcs
    # of a real track, see route_truth); scorers leave those out on both sides.
    serviced: bool | None
    # Blade-down passes that reached min_fraction (0 for route_truth, which has no
    # notion of separate passes over an arc).
    passes: int = 0


def offset_along(coords: Sequence[Coord], length_m: float, lon: float, lat: float) -> float:
    """Metres from the start of ``coords`` to the point on the line nearest (lon, lat).

    Planar in a local equirectangular frame, which is exact to millimetres over one
    block; the planar arc length is scaled to the geodesic ``length_m`` so offsets
    compare with segment lengths.
    """
    kx, ky = metres_per_degree(coords[0][1])
    lon0, lat0 = coords[0]
    pts = [((c[0] - lon0) * kx, (c[1] - lat0) * ky) for c in coords]
    run = sum(math.hypot(b[0] - a[0], b[1] - a[1]) for a, b in pairwise(pts))
    if run <= 0.0:
        return 0.0
    _, best_off = project_point(pts, ((lon - lon0) * kx, (lat - lat0) * ky))
    return min(max(best_off * length_m / run, 0.0), length_m)


def metres_per_degree(lat: float) -> tuple[float, float]:
    """Metres per degree of longitude and of latitude at ``lat``."""
    ky = math.radians(1.0) * EARTH_RADIUS_M
    return math.cos(math.radians(lat)) * ky, ky


@dataclass(slots=True)
class _Pass:
    edge: Edge
    lo: float  # metres along the edge, in driving direction
    hi: float
    plow: bool


def simulated_truth(
    graph: StreetGraph,
    fixes_by_vehicle: Mapping[str, Sequence[SimFix]],
    *,
    min_fraction: float = 0.8,
) -> dict[str, TrueCoverage]:
    """True coverage of every segment of ``graph`` from dense, noiseless simulator fixes.

    Relies on how ``geo.simulate`` drives: a truck enters every block at its start and
    leaves it at its end, so a run of fixes on one block is one pass that spans the
    whole block, except where the drive starts or stops (measured by projecting the
    first/last fix). Blocks shorter than one fix interval can be crossed between two
    fixes without ever being reported; they are recovered as the legal chain of blocks
    that joins the two fixes within the distance the truck could drive. Blade state of
    such a hidden block follows the simulator's rule: down on the truck's first pass
    in that direction.

    Raises ValueError for fixes further apart than ``MAX_GAP_S`` (truth needs the dense
    drive), unknown segments, or fixes that no legal chain of blocks can join.
    """
    if not 0.0 < min_fraction <= 1.0:
        raise ValueError("min_fraction must be in (0, 1]")
    best: dict[str, float] = {}
    full: dict[str, int] = {}
    components = graph.strongly_connected_components()
    for vehicle, fixes in fixes_by_vehicle.items():
        for p in _passes(graph, components, vehicle, fixes):
            if not p.plow:
                continue
            sid = p.edge.source_id
            length = p.edge.length_m
            frac = 1.0 if length <= 0.0 else min(max((p.hi - p.lo) / length, 0.0), 1.0)
            best[sid] = max(best.get(sid, 0.0), frac)
            if frac >= min_fraction:
                full[sid] = full.get(sid, 0) + 1
    out: dict[str, TrueCoverage] = {}
    for seg in graph.segments:
        frac = best.get(seg.source_id, 0.0)
        out[seg.source_id] = TrueCoverage(
            seg.source_id, seg.length_m, frac, frac >= min_fraction, full.get(seg.source_id, 0)
        )
    return out


def _passes(
    graph: StreetGraph, components: Sequence[set[str]], vehicle: str, fixes: Sequence[SimFix]
) -> list[_Pass]:
    if not fixes:
        return []
    edges: dict[tuple[str, bool], Edge] = {}
    for sid in {f.source_id for f in fixes}:
        found = graph.edges_of(sid)
        if not found:
            raise ValueError(f"vehicle {vehicle}: fix on unknown segment {sid!r}")
        for e in found:
            edges[(sid, e.forward)] = e
    # Runs of consecutive fixes on one directed edge.
    runs: list[tuple[Edge, list[SimFix]]] = []
    for a, b in pairwise(fixes):
        gap = (b.time - a.time).total_seconds()
        if gap <= 0.0 or gap > MAX_GAP_S + 1e-6:
            raise ValueError(
                f"vehicle {vehicle}: fixes at {a.time} and {b.time} are {gap:g} s apart; "
                f"truth needs the dense drive (strictly increasing, <= {MAX_GAP_S:g} s)"
            )
    for fix in fixes:
        edge = edges.get((fix.source_id, fix.forward))
        if edge is None:
            raise ValueError(
                f"vehicle {vehicle}: {fix.source_id} driven against its one-way direction"
            )
        if runs and runs[-1][0] is edge:
            runs[-1][1].append(fix)
        else:
            runs.append((edge, [fix]))

    # The strongly connected part of the network the simulator confines this truck to;
    # its dead ends (other exits leading out of it) are where the truck U-turns.
    first = runs[0][0]
    area = next((c for c in components if first.from_node in c and first.to_node in c), set())
    seen: set[int] = set()
    out: list[_Pass] = []
    last = len(runs) - 1
    for k, (edge, run) in enumerate(runs):
        lo = 0.0 if k > 0 else offset_along(edge.coords, edge.length_m, run[0].lon, run[0].lat)
        hi = (
            edge.length_m
            if k < last
            else offset_along(edge.coords, edge.length_m, run[-1].lon, run[-1].lat)
        )
        out.append(_Pass(edge, lo, hi, run[0].plow))
        seen.add(edge.index)
        if k < last:
            nxt_edge, nxt_run = runs[k + 1]
            chain = _hidden_chain(graph, area, vehicle, edge, run[-1], nxt_edge, nxt_run[0])
            for hidden in chain:
                out.append(_Pass(hidden, 0.0, hidden.length_m, hidden.index not in seen))
                seen.add(hidden.index)
    return out


def _hidden_chain(
    graph: StreetGraph, area: set[str], vehicle: str, a: Edge, fa: SimFix, b: Edge, fb: SimFix
) -> list[Edge]:
    """Blocks driven completely between fix ``fa`` (on ``a``) and ``fb`` (on ``b``).

    Even when ``b`` directly follows ``a`` the truck may have nosed into a stub of a
    few metres and U-turned at its end in between; the driving time tells the two
    apart (the fixes carry the truck's exact speed on ``a`` and ``b``).
    """
    dt = (fb.time - fa.time).total_seconds()
    rest_a = a.length_m - offset_along(a.coords, a.length_m, fa.lon, fa.lat)
    into_b = offset_along(b.coords, b.length_m, fb.lon, fb.lat)
    budget = MAX_SPEED_MPS * dt + 1.0 - rest_a - into_b
    candidates: list[tuple[float, list[Edge]]] = []
    if a.to_node == b.from_node and _continues(graph, a, b, area):
        candidates.append((_time_misfit(a, fa, b, fb, [], rest_a, into_b, dt), []))
    # Depth-first over legal continuations, as the simulator picks them: straight on
    # or turning, U-turning only at a dead end.
    stack: list[tuple[Edge, float, list[Edge]]] = [(a, 0.0, [])]
    while stack:
        prev, used, chain = stack.pop()
        if len(chain) >= _MAX_HIDDEN_BLOCKS:
            continue
        for nxt in _continuations(graph, prev, area):
            total = used + nxt.length_m
            if total > budget:
                continue
            path = [*chain, nxt]
            if nxt.to_node == b.from_node and _continues(graph, nxt, b, area):
                candidates.append((_time_misfit(a, fa, b, fb, path, rest_a, into_b, dt), path))
            stack.append((nxt, total, path))
    if not candidates:
        raise ValueError(
            f"vehicle {vehicle}: no legal blocks join {a.source_id} and {b.source_id} "
            f"within {dt:g} s; fixes not from the simulator's dense drive?"
        )
    # Several chains fit only around tiny loops; the one whose driving time at the
    # usual class speeds matches the fix interval best is the likely one.
    return min(candidates, key=lambda c: c[0])[1]


def _continuations(graph: StreetGraph, edge: Edge, area: set[str]) -> list[Edge]:
    """The simulator's choices after ``edge``: it never leaves its strongly connected
    area, so a node whose other exits lead out of it is a dead end (U-turn allowed)."""
    options = [
        e for e in graph.edges_from(edge.to_node) if e.from_node in area and e.to_node in area
    ]
    ahead = [
        e for e in options if not (e.source_id == edge.source_id and e.forward != edge.forward)
    ]
    return ahead or options


def _continues(graph: StreetGraph, edge: Edge, nxt: Edge, area: set[str]) -> bool:
    return any(e is nxt for e in _continuations(graph, edge, area))


def _time_misfit(
    a: Edge,
    fa: SimFix,
    b: Edge,
    fb: SimFix,
    path: Iterable[Edge],
    rest_a: float,
    into_b: float,
    dt: float,
) -> float:
    expected = rest_a / fa.speed_mps + into_b / fb.speed_mps
    expected += sum(e.length_m / class_speed_mps(e.segment.road_class) for e in path)
    return abs(expected - dt)


def serviced_ids(truth: Mapping[str, TrueCoverage]) -> set[str]:
    """Segments that truly were serviced (unsure ones excluded)."""
    return {sid for sid, t in truth.items() if t.serviced}


def project_point(
    arc: Sequence[tuple[float, float]], p: tuple[float, float]
) -> tuple[float, float]:
    """Distance from ``p`` to the polyline and planar offset of its nearest point."""
    px, py = p
    best_d2, best_off, run = math.inf, 0.0, 0.0
    for (ax, ay), (bx, by) in pairwise(arc):
        dx, dy = bx - ax, by - ay
        seg2 = dx * dx + dy * dy
        u = 0.0 if seg2 == 0.0 else min(max(((px - ax) * dx + (py - ay) * dy) / seg2, 0.0), 1.0)
        qx, qy = ax + u * dx - px, ay + u * dy - py
        d2 = qx * qx + qy * qy
        seg = math.sqrt(seg2)
        if d2 < best_d2:
            best_d2, best_off = d2, run + u * seg
        run += seg
    return math.sqrt(best_d2), best_off
