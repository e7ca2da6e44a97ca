"""Street network model: OSM-like ways in, drivable block segments out.

A *segment* is one block: the stretch of a street between two intersections (or a
dead end). Plow coverage, routing and map matching all reason per block, so this is
the unit everything downstream keys on; its ``source_id`` must therefore stay stable
for the same input data.

Everything here is pure: callers hand in ways or GeoJSON feature dicts that they read
themselves (see ``app.streets``).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from pyproj import Geod

log = logging.getLogger(__name__)

_GEOD = Geod(ellps="WGS84")

Coord = tuple[float, float]

# Below this a piece is a duplicated node or a digitising slip, not a block a plow
# could drive; keeping it would add edges with no length to the routing graph.
MIN_SEGMENT_LENGTH_M = 0.01

_MAJOR = ("motorway", "trunk", "primary")
_MIDDLE = ("secondary", "tertiary")
DRIVABLE: frozenset[str] = frozenset(
    [*_MAJOR, *_MIDDLE]
    + [f"{c}_link" for c in (*_MAJOR, *_MIDDLE)]
    + ["unclassified", "residential", "living_street", "service", "road"]
)
# Classes that are explicitly not for cars. Only consulted for GeoJSON input, whose
# class vocabulary is whatever the town uses ("Arterial", "Local", ...), so there an
# unknown class must not silently drop the street.
NOT_DRIVABLE: frozenset[str] = frozenset(
    {
        "footway", "cycleway", "path", "track", "steps", "pedestrian", "construction",
        "proposed", "bridleway", "corridor", "platform", "elevator", "abandoned",
        "raceway", "bus_guideway", "busway", "escape", "via_ferrata",
    }
)
_NO_ACCESS = frozenset({"no", "private"})
_FORWARD = frozenset({"yes", "true", "1"})
_BACKWARD = frozenset({"-1", "reverse"})
_TWO_WAY = frozenset({"no", "false", "0"})

_PRIORITY: dict[str, int] = {
    **{c: 1 for c in _MAJOR},
    **{f"{c}_link": 1 for c in _MAJOR},
    **{c: 2 for c in _MIDDLE},
    **{f"{c}_link": 2 for c in _MIDDLE},
    "residential": 3, "unclassified": 3, "living_street": 3, "road": 3,
    "service": 4,
}


@dataclass(frozen=True, slots=True)
class RawWay:
    """One street polyline as read from a file; node ids say which vertices are shared."""

    way_id: str
    tags: Mapping[str, str]
    node_ids: tuple[int | str, ...]
    coords: tuple[Coord, ...]  # (lon, lat), same length as node_ids


@dataclass(frozen=True, slots=True)
class Segment:
    """One block of street; ``coords`` run in the only legal direction when ``oneway``."""

    source_id: str
    name: str | None
    road_class: str
    oneway: bool
    coords: tuple[Coord, ...]
    length_m: float
    priority: int
    start_node: str
    end_node: str


def default_priority(road_class: str) -> int:
    """Plow priority, 1 = first. Unknown (non-OSM) classes rank with residential."""
    return _PRIORITY.get(road_class, 3)


def is_drivable(tags: Mapping[str, str], *, unknown_class_ok: bool = False) -> bool:
    """Whether a plow may drive this way (OSM tagging semantics)."""
    road_class = tags.get("highway", "")
    if unknown_class_ok:
        if road_class in NOT_DRIVABLE:
            return False
    elif road_class not in DRIVABLE:
        return False
    if tags.get("area") == "yes":
        return False
    # The most specific access key present decides, as OSM routers do: a way tagged
    # access=no + motor_vehicle=yes is open to the plow.
    for key in ("motor_vehicle", "vehicle", "access"):
        if key in tags:
            return tags[key] not in _NO_ACCESS
    return True


def oneway_direction(tags: Mapping[str, str]) -> int:
    """+1: only along the way's direction, -1: only against it, 0: both ways."""
    value = tags.get("oneway", "").strip().lower()
    if value in _FORWARD:
        return 1
    if value in _BACKWARD:
        return -1
    if value in _TWO_WAY:
        return 0
    # Implied one-ways when untagged (or tagged with something we don't understand,
    # e.g. "reversible", which is time-dependent and so not a fixed direction).
    if tags.get("junction") in ("roundabout", "circular") or tags.get("highway") == "motorway":
        return 0 if value in ("reversible", "alternating") else 1
    return 0


def geodesic_length_m(coords: Sequence[Coord]) -> float:
    lons = [c[0] for c in coords]
    lats = [c[1] for c in coords]
    return float(_GEOD.line_length(lons, lats))


def node_key(node: int | str) -> str:
    # OSM node ids get a prefix so they can never collide with coordinate keys.
    return f"n{node}" if isinstance(node, int) else node


def coord_key(lon: float, lat: float) -> str:
    """Node id for file formats without node ids: ends within ~1e-7° (~1 cm) meet."""
    return f"{round(lon * 1e7)}:{round(lat * 1e7)}"


def build_segments(ways: Iterable[RawWay]) -> list[Segment]:
    """Drivable OSM ways split into blocks, in input order, pieces in way order."""
    return _build(ways, is_drivable)


def _build(ways: Iterable[RawWay], keep: Callable[[Mapping[str, str]], bool]) -> list[Segment]:
    kept = [_dedupe(w) for w in ways if keep(w.tags)]
    uses: Counter[int | str] = Counter(n for w in kept for n in w.node_ids)
    # Several RawWays may share an id (parts of one MultiLineString); numbering continues
    # across them so source_ids stay unique.
    next_piece: dict[str, int] = {}
    out: list[Segment] = []
    for way in kept:
        if len(way.node_ids) < 2:
            continue
        first = next_piece.get(way.way_id, 0)
        pieces = _split_points(way.node_ids, uses)
        next_piece[way.way_id] = first + len(pieces) - 1
        for k, (a, b) in enumerate(pairwise(pieces)):
            seg = _make_segment(
                f"{way.way_id}:{first + k}", way.tags, way.node_ids[a : b + 1],
                way.coords[a : b + 1],
            )
            if seg is not None:
                out.append(seg)
    return out


def _dedupe(way: RawWay) -> RawWay:
    """Drop consecutively repeated nodes, which would otherwise count as a self-crossing."""
    if len(way.node_ids) != len(way.coords):
        raise ValueError(f"way {way.way_id}: {len(way.node_ids)} node ids, "
                         f"{len(way.coords)} coordinates")
    keep = [i for i, n in enumerate(way.node_ids) if i == 0 or n != way.node_ids[i - 1]]
    if len(keep) == len(way.node_ids):
        return way
    return RawWay(way.way_id, way.tags, tuple(way.node_ids[i] for i in keep),
                  tuple(way.coords[i] for i in keep))


def _split_points(nodes: tuple[int | str, ...], uses: Counter[int | str]) -> list[int]:
    last = len(nodes) - 1
    return [0, *(i for i in range(1, last) if uses[nodes[i]] >= 2), last]


def _make_segment(
    source_id: str,
    tags: Mapping[str, str],
    nodes: Sequence[int | str],
    coords: Sequence[Coord],
) -> Segment | None:
    length = geodesic_length_m(coords)
    if length < MIN_SEGMENT_LENGTH_M:
        return None
    direction = oneway_direction(tags)
    if direction < 0:
        # Store one-ways in their legal direction so consumers never consult tags.
        nodes, coords = list(reversed(nodes)), list(reversed(coords))
    road_class = tags.get("highway") or "road"
    return Segment(
        source_id=source_id,
        name=tags.get("name") or None,
        road_class=road_class,
        oneway=direction != 0,
        coords=tuple(coords),
        length_m=length,
        priority=default_priority(road_class),
        start_node=node_key(nodes[0]),
        end_node=node_key(nodes[-1]),
    )


# --- GeoJSON street centerlines -------------------------------------------------------

_PASSTHROUGH_TAGS = ("access", "vehicle", "motor_vehicle", "junction", "area")


def segments_from_features(
    features: Iterable[Mapping[str, Any]],
    *,
    split: bool,
    id_property: str | None = None,
    name_property: str = "name",
    oneway_default: bool = False,
) -> list[Segment]:
    """Segments from GeoJSON LineString/MultiLineString features (lon/lat, WGS84).

    split=True: features are whole streets, cut into blocks at shared vertices
    (source_id "<id>:<n>"). split=False: each feature already is one block and keeps
    its id as source_id. ``id_property`` names the id property when it isn't ``id``;
    ``oneway_default`` is for networks of directed arcs (one feature per direction).
    """
    ways: list[RawWay] = []
    seen: set[str] = set()
    for feature in features:
        fid, tags, parts = _read_feature(feature, id_property, name_property, oneway_default)
        if not parts:
            continue
        if fid in seen:
            raise ValueError(f"duplicate feature id {fid!r}: ids must identify one street")
        seen.add(fid)
        ways.extend(RawWay(fid, tags, tuple(coord_key(*c) for c in p), p) for p in parts)

    def keep(tags: Mapping[str, str]) -> bool:
        return is_drivable(tags, unknown_class_ok=True)

    if split:
        return _build(ways, keep)
    return _unsplit(ways, keep)


def _unsplit(ways: list[RawWay], keep: Callable[[Mapping[str, str]], bool]) -> list[Segment]:
    by_id: dict[str, list[RawWay]] = {}
    for way in ways:
        if keep(way.tags):
            by_id.setdefault(way.way_id, []).append(way)
    out: list[Segment] = []
    for fid, parts in by_id.items():
        chained = _chain([p.coords for p in parts])
        if chained is None:
            # Not one line, so cannot be one block; numbered pieces keep the id findable.
            log.warning("feature %s: %d disjoint parts, kept as %s:0..", fid, len(parts), fid)
            lines = [p.coords for p in parts]
            ids = [f"{fid}:{k}" for k in range(len(parts))]
        else:
            lines, ids = [chained], [fid]
        tags = parts[0].tags
        for sid, line in zip(ids, lines, strict=True):
            seg = _make_segment(sid, tags, [coord_key(*c) for c in line], line)
            if seg is not None:
                out.append(seg)
    return out


def _chain(parts: list[tuple[Coord, ...]]) -> tuple[Coord, ...] | None:
    """Join MultiLineString parts end to start (flipping parts if needed), else None."""
    line = list(parts[0])
    for i, part in enumerate(parts[1:]):
        head, tail = coord_key(*part[0]), coord_key(*part[-1])
        if i == 0 and coord_key(*line[-1]) not in (head, tail) \
                and coord_key(*line[0]) in (head, tail):
            line.reverse()
        end = coord_key(*line[-1])
        if end == head:
            line.extend(part[1:])
        elif end == tail:
            line.extend(reversed(part[:-1]))
        else:
            return None
    return tuple(line)


def _read_feature(
    feature: Mapping[str, Any],
    id_property: str | None,
    name_property: str,
    oneway_default: bool,
) -> tuple[str, dict[str, str], list[tuple[Coord, ...]]]:
    props: Mapping[str, Any] = feature.get("properties") or {}
    raw_id = props.get(id_property) if id_property else props.get("id", feature.get("id"))
    if raw_id is None or raw_id == "":
        raise ValueError(
            f"feature without an id (properties: {sorted(props)[:12]}); pass id_property"
        )
    geometry = feature.get("geometry") or {}
    gtype, rings = geometry.get("type"), geometry.get("coordinates") or []
    if gtype == "LineString":
        rings = [rings]
    elif gtype != "MultiLineString":
        rings = []
    # Extra ordinates (z, time) are dropped: blocks are 2-D.
    parts = [tuple((float(c[0]), float(c[1])) for c in r) for r in rings if len(r) >= 2]

    tags: dict[str, str] = {"highway": str(props.get("highway") or props.get("road_class")
                                           or "road")}
    name = props.get(name_property)
    if name is not None and str(name).strip():
        tags["name"] = str(name).strip()
    oneway = _oneway_tag(props.get("oneway"))
    if oneway is None and oneway_default:
        oneway = "yes"
    if oneway is not None:
        tags["oneway"] = oneway
    for key in _PASSTHROUGH_TAGS:
        if props.get(key) is not None:
            tags[key] = str(props[key])
    return str(raw_id), tags, parts


def _oneway_tag(value: Any) -> str | None:
    """GeoJSON writers emit oneway as bool, int or text; map all to OSM's spelling."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "yes" if value else "no"
    text = str(value).strip().lower()
    if text in _FORWARD:
        return "yes"
    if text in _BACKWARD:
        return "-1"
    if text in _TWO_WAY:
        return "no"
    return None
