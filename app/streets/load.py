"""Pick the right reader for a street-network file and build block segments from it."""

from __future__ import annotations

from pathlib import Path

from app.streets.geojson import read_geojson
from app.streets.osm import read_osm
from geo.network import Segment, build_segments, segments_from_features

OSM_SUFFIXES = (".osm.pbf", ".pbf", ".osm", ".osm.gz", ".osm.bz2")
GEOJSON_SUFFIXES = (".geojson", ".geojson.gz", ".json", ".json.gz")


def load_segments(
    path: Path,
    *,
    split: bool | None = None,
    id_property: str | None = None,
    name_property: str = "name",
    oneway_default: bool = False,
) -> list[Segment]:
    """Block segments from an OSM or GeoJSON street file, chosen by suffix.

    OSM ways are always split at intersections. GeoJSON features are taken as ready
    blocks unless ``split=True``: a town's own segment ids must survive loading, and
    guessing would silently rename them. The remaining options only apply to GeoJSON
    (see ``geo.network.segments_from_features``).
    """
    name = Path(path).name.lower()
    if name.endswith(OSM_SUFFIXES):
        if split is False:
            raise ValueError(f"{path}: OSM ways are streets, not blocks; they are always split")
        return build_segments(read_osm(path))
    if name.endswith(GEOJSON_SUFFIXES):
        return segments_from_features(
            read_geojson(path),
            split=bool(split),
            id_property=id_property,
            name_property=name_property,
            oneway_default=oneway_default,
        )
    raise ValueError(
        f"{path}: unknown street file type; expected one of {OSM_SUFFIXES + GEOJSON_SUFFIXES}"
    )
