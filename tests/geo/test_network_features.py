"""GeoJSON street centerlines to segments (pure: features are built in the test)."""

from __future__ import annotations

from typing import Any

import pytest

from geo.network import segments_from_features


def line(fid: Any, coords: list[tuple[float, float]], **props: Any) -> dict[str, Any]:
    return {"type": "Feature", "properties": {"id": fid, **props},
            "geometry": {"type": "LineString", "coordinates": [list(c) for c in coords]}}


W, C, E = (15.0, 48.001), (15.001, 48.001), (15.002, 48.001)
S, N = (15.001, 48.0), (15.001, 48.002)


def test_split_mode_cuts_whole_streets_at_shared_vertices() -> None:
    segs = segments_from_features(
        [line("main", [W, C, E], name="Main St"), line(7, [S, C, N])], split=True
    )
    assert [s.source_id for s in segs] == ["main:0", "main:1", "7:0", "7:1"]
    ends = {s.source_id: (s.start_node, s.end_node) for s in segs}
    assert ends["main:0"][1] == ends["main:1"][0] == ends["7:0"][1] == ends["7:1"][0]
    assert segs[0].name == "Main St" and segs[2].name is None
    assert segs[0].length_m == pytest.approx(74.6, abs=0.3)


def test_segment_mode_keeps_features_whole_and_joins_coinciding_ends() -> None:
    # The second street's end differs from the first's start by 3e-9°, well under 1e-7°.
    near_w = (W[0] + 3e-9, W[1] - 3e-9)
    segs = segments_from_features(
        [line("a", [W, C, E]), line("b", [S, near_w]), line("c", [N, (15.003, 48.003)])],
        split=False,
    )
    assert [s.source_id for s in segs] == ["a", "b", "c"]
    assert segs[0].coords == (W, C, E)  # the shared vertex C does not cut "a"
    assert segs[1].end_node == segs[0].start_node
    assert segs[2].start_node not in {segs[0].start_node, segs[0].end_node, segs[1].start_node}


@pytest.mark.parametrize(
    ("value", "oneway", "reversed_"),
    [("yes", True, False), ("1", True, False), (1, True, False), (True, True, False),
     ("true", True, False), ("-1", True, True), (-1, True, True), ("no", False, False),
     ("0", False, False), (0, False, False), (False, False, False), ("false", False, False),
     (None, False, False)],
)
def test_oneway_values(value: Any, oneway: bool, reversed_: bool) -> None:
    (seg,) = segments_from_features([line("x", [W, C, E], oneway=value)], split=False)
    assert seg.oneway is oneway
    assert seg.coords == ((E, C, W) if reversed_ else (W, C, E))


def test_directed_arcs_default_to_oneway() -> None:
    feats = [line("ab", [W, C]), line("ba", [C, W]), line("cd", [C, E], oneway="no")]
    segs = segments_from_features(feats, split=False, oneway_default=True)
    assert [s.oneway for s in segs] == [True, True, False]


def test_classes_ids_and_drops() -> None:
    feats = [
        line("local", [W, C], road_class="Arterial"),  # a town's own vocabulary: keep
        line("walk", [C, E], highway="footway"),
        line("gated", [S, C], highway="service", access="private"),
        {"type": "Feature", "id": "top", "properties": {"highway": "primary"},
         "geometry": {"type": "LineString", "coordinates": [list(C), list(N)]}},
        {"type": "Feature", "properties": {"id": "pt"},
         "geometry": {"type": "Point", "coordinates": list(C)}},
        {"type": "Feature", "properties": {"id": "null"}, "geometry": None},
    ]
    segs = segments_from_features(feats, split=False)
    assert [(s.source_id, s.road_class, s.priority) for s in segs] == [
        ("local", "Arterial", 3), ("top", "primary", 1)
    ]
    assert [s.source_id for s in segments_from_features(
        [line(None, [W, C], ref="R1")], split=False, id_property="ref")] == ["R1"]


def test_missing_or_duplicate_ids_are_errors() -> None:
    with pytest.raises(ValueError, match="id_property"):
        segments_from_features([line(None, [W, C])], split=False)
    with pytest.raises(ValueError, match="duplicate"):
        segments_from_features([line("a", [W, C]), line("a", [C, E])], split=False)


def multi(fid: str, parts: list[list[tuple[float, float]]]) -> dict[str, Any]:
    return {"type": "Feature", "properties": {"id": fid},
            "geometry": {"type": "MultiLineString",
                         "coordinates": [[list(c) for c in p] for p in parts]}}


def test_multilinestring_parts_are_chained_or_numbered() -> None:
    # Parts digitised in mixed directions still form one line W-C-E-(15.003).
    far = (15.003, 48.001)
    (joined,) = segments_from_features([multi("m", [[C, W], [C, E], [far, E]])], split=False)
    assert joined.source_id == "m" and joined.coords == (W, C, E, far)
    apart = segments_from_features([multi("g", [[W, C], [S, (15.0, 48.0)]])], split=False)
    assert [s.source_id for s in apart] == ["g:0", "g:1"]
    pieces = segments_from_features([multi("s", [[W, C], [C, E]]), line("x", [S, C])],
                                    split=True)
    assert [s.source_id for s in pieces] == ["s:0", "s:1", "x:0"]
