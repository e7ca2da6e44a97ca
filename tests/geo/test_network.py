"""Block splitting and tag semantics: hand-made cases plus real facts of Krems (OSM)."""

from __future__ import annotations

import gzip
import xml.etree.ElementTree as ET
from collections import defaultdict
from itertools import pairwise

import pytest
from geo_shared_data import shared_data
from pyproj import Geod, Transformer
from shapely.geometry import LineString

from app.streets.osm import read_osm
from geo.network import RawWay, Segment, build_segments, default_priority

GEOD = Geod(ellps="WGS84")
# Node id -> (lon, lat) of a small made-up grid near Krems; steps of 0.001° are ~74 m
# east-west and ~111 m north-south there.
P = {
    1: (15.000, 48.001), 2: (15.001, 48.001), 3: (15.002, 48.001),
    4: (15.001, 48.000), 5: (15.001, 48.002),
    6: (15.003, 48.003), 7: (15.004, 48.003), 8: (15.005, 48.003), 9: (15.004, 48.004),
}


def way(wid: str, nodes: list[int], **tags: str) -> RawWay:
    return RawWay(wid, {"highway": "residential", **tags}, tuple(nodes),
                  tuple(P[n] for n in nodes))


def by_id(segments: list[Segment]) -> dict[str, Segment]:
    return {s.source_id: s for s in segments}


def geodesic(nodes: list[int]) -> float:
    return float(GEOD.line_length([P[n][0] for n in nodes], [P[n][1] for n in nodes]))


def test_plus_intersection_is_four_blocks_meeting_at_the_shared_node() -> None:
    segs = by_id(build_segments([way("wA", [1, 2, 3]), way("wB", [4, 2, 5])]))
    assert sorted(segs) == ["wA:0", "wA:1", "wB:0", "wB:1"]
    assert (segs["wA:0"].start_node, segs["wA:0"].end_node) == ("n1", "n2")
    assert (segs["wA:1"].start_node, segs["wA:1"].end_node) == ("n2", "n3")
    assert (segs["wB:0"].start_node, segs["wB:0"].end_node) == ("n4", "n2")
    assert segs["wB:1"].coords == (P[2], P[5])
    # One block east-west at 48°N is ~74.5 m, north-south ~111.2 m.
    assert segs["wA:0"].length_m == pytest.approx(74.6, abs=0.3)
    assert segs["wB:0"].length_m == pytest.approx(111.2, abs=0.3)
    assert sum(s.length_m for s in segs.values()) == pytest.approx(
        geodesic([1, 2, 3]) + geodesic([4, 2, 5]), rel=1e-9
    )
    assert not any(s.oneway for s in segs.values())


def test_non_drivable_ways_neither_appear_nor_split_streets() -> None:
    ways = [
        way("wD", [6, 7, 8]),
        way("wF", [9, 7], highway="footway"),  # a crossing footpath is no intersection
        way("wP", [1, 2], highway="service", access="private"),
        way("wN", [2, 3], access="no"),
        way("wR", [4, 2], area="yes"),
        way("wC", [2, 5], highway="construction"),
        way("wS", [3, 6], highway="service"),  # no access tag: a plowable alley
    ]
    segs = by_id(build_segments(ways))
    assert sorted(segs) == ["wD:0", "wS:0"]
    assert segs["wD:0"].coords == (P[6], P[7], P[8])


def test_specific_access_tag_overrides_general_one() -> None:
    segs = build_segments([way("wM", [1, 2], access="no", motor_vehicle="yes")])
    assert [s.source_id for s in segs] == ["wM:0"]


def test_oneway_minus_one_is_stored_reversed_per_block() -> None:
    segs = by_id(build_segments([way("wA", [1, 2, 3], oneway="-1"), way("wB", [4, 2])]))
    a0, a1 = segs["wA:0"], segs["wA:1"]
    assert a0.oneway and a1.oneway
    # Pieces keep the way's numbering but point the legal way: 2 -> 1 and 3 -> 2.
    assert a0.coords == (P[2], P[1]) and (a0.start_node, a0.end_node) == ("n2", "n1")
    assert a1.coords == (P[3], P[2]) and (a1.start_node, a1.end_node) == ("n3", "n2")


def test_oneway_spellings_and_implied_oneways() -> None:
    ways = [
        way("w1", [1, 2], oneway="yes"), way("w2", [2, 3], oneway="true"),
        way("w3", [4, 2], oneway="1"), way("w4", [6, 7], oneway="no"),
        way("w5", [7, 8], highway="motorway"),
        way("w6", [8, 9], highway="motorway", oneway="no"),
        way("w7", [9, 6]),
    ]
    segs = by_id(build_segments(ways))
    assert {k: s.oneway for k, s in segs.items()} == {
        "w1:0": True, "w2:0": True, "w3:0": True, "w4:0": False,
        "w5:0": True, "w6:0": False, "w7:0": False,
    }


def test_roundabout_ring_is_oneway_and_split_at_its_approaches() -> None:
    ring = way("wR", [2, 3, 5, 1, 2], junction="roundabout")
    segs = by_id(build_segments([ring, way("wE", [8, 3]), way("wW", [4, 1])]))
    ring_segs = [segs[f"wR:{k}"] for k in range(3)]
    assert all(s.oneway for s in ring_segs)
    assert [(s.start_node, s.end_node) for s in ring_segs] == [
        ("n2", "n3"), ("n3", "n1"), ("n1", "n2")
    ]
    assert not segs["wE:0"].oneway


def test_closed_way_alone_is_one_loop_block() -> None:
    segs = build_segments([way("wL", [6, 7, 9, 6], junction="circular")])
    assert len(segs) == 1
    assert segs[0].start_node == segs[0].end_node == "n6" and segs[0].oneway


def test_way_through_the_same_node_twice_splits_there() -> None:
    # A lollipop: street 1-2, then a loop 2-3-5-2 back onto itself.
    segs = by_id(build_segments([way("wL", [1, 2, 3, 5, 2])]))
    assert sorted(segs) == ["wL:0", "wL:1"]
    assert segs["wL:1"].start_node == segs["wL:1"].end_node == "n2"


def test_zero_length_pieces_are_dropped_but_numbering_is_kept() -> None:
    # Node 10 sits exactly on node 1: the first piece has no length.
    ways = [RawWay("wZ", {"highway": "road"}, (1, 10, 2), (P[1], P[1], P[2])),
            RawWay("wX", {"highway": "road"}, (10, 5), (P[1], P[5]))]
    segs = by_id(build_segments(ways))
    assert sorted(segs) == ["wX:0", "wZ:1"]
    assert segs["wZ:1"].start_node == "n10"


def test_repeated_consecutive_node_is_not_a_self_intersection() -> None:
    segs = build_segments([RawWay("wR", {"highway": "road"}, (1, 2, 2, 3),
                                  (P[1], P[2], P[2], P[3]))])
    assert [s.source_id for s in segs] == ["wR:0"] and len(segs[0].coords) == 3


def test_default_priority() -> None:
    expected = {
        "motorway": 1, "trunk_link": 1, "primary": 1, "secondary": 2, "tertiary_link": 2,
        "residential": 3, "unclassified": 3, "living_street": 3, "road": 3, "service": 4,
    }
    assert {c: default_priority(c) for c in expected} == expected
    segs = build_segments([way("w1", [1, 2], highway="primary_link")])
    assert segs[0].priority == 1 and segs[0].road_class == "primary_link"


def test_output_is_deterministic() -> None:
    ways = [way("wA", [1, 2, 3]), way("wB", [4, 2, 5]), way("wC", [3, 6, 7, 8])]
    assert build_segments(ways) == build_segments(list(ways))


# --- Krems an der Donau (OSM XML) -------------------------------------------------------


@pytest.fixture(scope="module")
def krems() -> list[Segment]:
    return build_segments(read_osm(shared_data("osm", "krems.osm.gz")))


def test_missongasse_is_six_blocks_between_its_cross_streets(krems: list[Segment]) -> None:
    # OSM way 25096351 (oneway=yes, 18 nodes) is crossed by five streets before it ends
    # at Austraße; checked by hand against the XML.
    blocks = [s for s in krems if s.source_id.startswith("w25096351:")]
    assert [s.source_id for s in blocks] == [f"w25096351:{k}" for k in range(6)]
    assert all(s.name == "Missongasse" and s.oneway for s in blocks)
    assert blocks[0].start_node == "n273131110" and blocks[-1].end_node == "n273131123"
    assert all(a.end_node == b.start_node for a, b in pairwise(blocks))
    assert sum(s.length_m for s in blocks) == pytest.approx(576.4, abs=1.0)

    names_at: dict[str, set[str]] = defaultdict(set)
    for s in krems:
        for node in (s.start_node, s.end_node):
            names_at[node].add(s.name or "")
    crossing = [names_at[b.end_node] - {"Missongasse"} for b in blocks[:-1]]
    assert crossing == [{"Sponnergasse"}, {"Josef Wallensdorfer Gasse"},
                        {"Johann-Bacher-Gasse"}, {"Schrebergasse"}, {"Am Exerzierplatz"}]
    assert "Austraße" in names_at[blocks[-1].end_node]


def test_krems_one_ways_and_roundabout(krems: list[Segment]) -> None:
    goettweiger = [s for s in krems if s.name == "Göttweigergasse"]
    assert len(goettweiger) == 13 and all(s.oneway for s in goettweiger)
    # Way 19780555 is a roundabout without any oneway tag; it meets four roads.
    ring = [s for s in krems if s.source_id.startswith("w19780555:")]
    assert len(ring) == 4 and all(s.oneway for s in ring)
    assert ring[0].start_node == ring[-1].end_node == "n206089610"
    assert all(a.end_node == b.start_node for a, b in pairwise(ring))
    ids = {s.source_id.split(":")[0] for s in krems}
    assert "w25097713" not in ids  # highway=residential + area=yes: a square, not a street


def test_krems_blocks_only_meet_at_their_ends(krems: list[Segment]) -> None:
    ends = {c for s in krems for c in (s.coords[0], s.coords[-1])}
    assert not [s.source_id for s in krems if ends.intersection(s.coords[1:-1])]
    assert all(s.length_m > 0 and len(s.coords) >= 2 for s in krems)


def test_krems_total_length_matches_independent_utm_measure(krems: list[Segment]) -> None:
    # Re-read the XML with the standard library and measure whole ways in UTM 33N:
    # splitting must neither lose nor duplicate road.
    with gzip.open(shared_data("osm", "krems.osm.gz")) as xml:
        root = ET.parse(xml).getroot()
    loc = {n.get("id"): (float(n.get("lon", 0)), float(n.get("lat", 0)))
           for n in root.iter("node")}
    drivable = {"motorway", "trunk", "primary", "secondary", "tertiary", "motorway_link",
                "trunk_link", "primary_link", "secondary_link", "tertiary_link",
                "unclassified", "residential", "living_street", "service", "road"}
    to_utm = Transformer.from_crs("EPSG:4326", "EPSG:32633", always_xy=True)
    total = 0.0
    for w in root.iter("way"):
        tags = {t.get("k"): t.get("v") for t in w.iter("tag")}
        if (tags.get("highway") not in drivable or tags.get("access") in ("no", "private")
                or tags.get("area") == "yes"):
            continue
        pts = [loc[nd.get("ref")] for nd in w.iter("nd")]
        xs, ys = to_utm.transform([p[0] for p in pts], [p[1] for p in pts])
        total += LineString(list(zip(xs, ys, strict=True))).length
    ours = sum(s.length_m for s in krems)
    assert 100_000 < ours < 130_000
    # UTM shrinks lengths by ~0.04 % at Krems (scale 0.9996 near the central meridian).
    assert ours == pytest.approx(total, rel=1e-3)


def test_real_oneway_minus_one_in_baltimore() -> None:
    # North Robinson Street, way 6017285, is tagged oneway=-1.
    raw = [w for w in read_osm(shared_data("osm", "baltimore.osm.pbf"))]
    street = next(w for w in raw if w.way_id == "w6017285")
    assert street.tags["oneway"] == "-1" and street.tags["name"] == "North Robinson Street"
    blocks = [s for s in build_segments(raw) if s.source_id.startswith("w6017285:")]
    assert blocks and all(s.oneway for s in blocks)
    driven = [c for s in reversed(blocks) for c in s.coords[:-1]] + [blocks[0].coords[-1]]
    assert tuple(driven) == street.coords[::-1]
