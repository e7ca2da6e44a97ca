"""Read GeoJSON street centerlines (.geojson / .json, optionally gzip-compressed)."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import orjson


def read_geojson(path: Path | str) -> list[dict[str, Any]]:
    """Features of a FeatureCollection, a single Feature, or a bare list of features."""
    raw = Path(path).read_bytes()
    # Sniff the gzip magic rather than trust the suffix: exports often get renamed.
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    doc = orjson.loads(raw)
    if isinstance(doc, list):
        features = doc
    elif isinstance(doc, dict) and doc.get("type") == "FeatureCollection":
        features = doc.get("features") or []
    elif isinstance(doc, dict) and doc.get("type") == "Feature":
        features = [doc]
    else:
        raise ValueError(f"{path}: not a GeoJSON FeatureCollection or Feature")
    # RFC 7946 fixes GeoJSON to WGS84 lon/lat; older files may still name another CRS,
    # and reading projected metres as degrees would put the town in the ocean.
    crs = doc.get("crs") if isinstance(doc, dict) else None
    if crs is not None:
        name = str((crs.get("properties") or {}).get("name", ""))
        if not name.endswith(("CRS84", "EPSG::4326", "EPSG:4326")):
            raise ValueError(f"{path}: coordinates in {name or crs!r}, expected WGS84 lon/lat")
    return [f for f in features if isinstance(f, dict)]
