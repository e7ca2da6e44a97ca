"""File readers: OSM (XML, gzip, PBF) and GeoJSON segment files from real towns."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import osmium
import pytest
from geo_shared_data import shared_data
from pyproj import Transformer
from shapely.geometry import LineString

from app.streets.geojson import read_geojson
from app.streets.load import load_segments
from app.streets.osm import OsmReadStats, read_osm
from geo.graph import StreetGraph
from geo.network import build_segments

CLIPPED_OSM = """<?xml version='1.0' encoding='UTF-8'?>
<osm version='0.6'>
  <node id='1' lat='48.0' lon='15.0'/>
  <node id='2' lat='48.0' lon='15.001'/>
  <node id='3' lat='48.0' lon='15.002'/>
  <way id='10'><nd ref='1'/><nd ref='2'/><nd ref='3'/><nd ref='99'/>
    <tag k='highway' v='residential'/></way>
  <way id='11'><nd ref='1'/><nd ref='98'/><nd ref='3'/><tag k='highway' v='service'/></way>
  <way id='12'><nd ref='97'/><nd ref='2'/><tag k='highway' v='primary'/></way>
  <way id='13'><nd ref='1'/><nd ref='3'/><tag k='waterway' v='ditch'/></way>
</osm>
"""


def test_read_osm_trims_ways_clipped_at_the_extract_edge(tmp_path: Path) -> None:
    path = tmp_path / "clipped.osm"
    path.write_text(CLIPPED_OSM)
    stats = OsmReadStats()
    ways = list(read_osm(path, stats=stats))
    # Way 10 loses its outside node 99; 11 has a hole and 12 one located node: skipped.
    assert [(w.way_id, w.node_ids) for w in ways] == [("w10", (1, 2, 3))]
    assert ways[0].coords == ((15.0, 48.0), (15.001, 48.0), (15.002, 48.0))
    assert (stats.ways, stats.trimmed, stats.skipped_missing_nodes) == (1, 1, 2)
    strict = OsmReadStats()
    assert list(read_osm(path, stats=strict, trim_clipped=False)) == []
    assert strict.skipped_missing_nodes == 3


def test_krems_osm_gz_only_highways_with_full_geometry() -> None:
    ways = list(read_osm(shared_data("osm", "krems.osm.gz")))
    # Krems has 838 ways tagged highway (counted separately with ElementTree).
    assert len(ways) == 838
    assert all("highway" in w.tags for w in ways)
    assert all(len(w.node_ids) == len(w.coords) >= 2 for w in ways)
    assert all(15.5 < lon < 15.9 and 48.3 < lat < 48.5 for w in ways for lon, lat in w.coords)


def test_pbf_and_xml_of_the_same_data_give_the_same_segments(tmp_path: Path) -> None:
    src = shared_data("osm", "krems.osm.gz")
    pbf = tmp_path / "krems.osm.pbf"
    with osmium.SimpleWriter(str(pbf)) as writer:
        for obj in osmium.FileProcessor(str(src)):
            writer.add(obj)
    from_xml = load_segments(src)
    assert from_xml == build_segments(read_osm(src))
    assert load_segments(pbf) == from_xml


def test_load_segments_rejects_what_it_cannot_honour(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="always split"):
        load_segments(shared_data("osm", "boston-downtown.osm.pbf"), split=False)
    with pytest.raises(ValueError, match="unknown street file"):
        load_segments(tmp_path / "streets.shp")


def test_gps_truth_arcs_as_segments_keep_ids_and_connect() -> None:
    path = shared_data("gps-truth", "00000046_network.geojson.gz")
    with gzip.open(path) as fh:
        raw = json.load(fh)["features"]
    segs = load_segments(path, id_property="arc_id", oneway_default=True)
    assert [s.source_id for s in segs] == [str(f["properties"]["arc_id"]) for f in raw]
    assert len(segs) == 649 and all(s.oneway for s in segs)
    # The file numbers its nodes; coinciding ends must give exactly that node structure.
    key_of: dict[int, set[str]] = {}
    for f, s in zip(raw, segs, strict=True):
        key_of.setdefault(f["properties"]["from"], set()).add(s.start_node)
        key_of.setdefault(f["properties"]["to"], set()).add(s.end_node)
    assert all(len(keys) == 1 for keys in key_of.values())
    assert len(set().union(*key_of.values())) == len(key_of) == 299
    # 646 of the arcs have a twin in the other direction: the graph needs no extra edges.
    assert len(StreetGraph(segs).edges) == 649


def test_syracuse_snow_route_segments() -> None:
    path = shared_data("plow", "syracuse", "snow_route_segments.geojson.gz")
    segs = load_segments(path, id_property="snowroutesegmentid", name_property="roadname")
    assert len(segs) == 5018
    by_id = {s.source_id: s for s in segs}
    oak = by_id["SNW-479"]  # the 900 block of Oak St
    assert oak.name == "OAK ST" and not oak.oneway

    def meeting(node: str) -> set[str]:
        return {s.source_id for s in segs if node in (s.start_node, s.end_node)} - {"SNW-479"}

    # 800 Oak St and Farmer St meet it at one end; Sidney St and 1000 Oak St at the other.
    assert meeting(oak.start_node) == {"SNW-1795", "SNW-878", "SNW-475"}
    assert meeting(oak.end_node) == {"SNW-1680", "SNW-1681"}
    to_utm = Transformer.from_crs("EPSG:4326", "EPSG:32618", always_xy=True)  # UTM 18N
    xs, ys = to_utm.transform([c[0] for c in oak.coords], [c[1] for c in oak.coords])
    assert oak.length_m == pytest.approx(LineString(zip(xs, ys, strict=True)).length, rel=2e-3)


def test_read_geojson_plain_gzip_and_crs(tmp_path: Path) -> None:
    feature = {"type": "Feature", "properties": {"id": 1},
               "geometry": {"type": "LineString", "coordinates": [[15, 48], [15.001, 48]]}}
    doc: dict[str, object] = {"type": "FeatureCollection", "features": [feature]}
    plain, packed = tmp_path / "s.geojson", tmp_path / "s.geojson.gz"
    plain.write_text(json.dumps(doc))
    packed.write_bytes(gzip.compress(json.dumps(doc).encode()))
    assert read_geojson(plain) == read_geojson(packed) == [feature]
    assert [s.source_id for s in load_segments(packed)] == ["1"]
    doc["crs"] = {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::3857"}}
    plain.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="expected WGS84"):
        read_geojson(plain)
