"""Street-network file readers: turn OSM and GeoJSON files into ``geo.network`` segments.

The geometry logic lives in the pure ``geo`` package; this package only does file I/O.
"""

from app.streets.load import load_segments

__all__ = ["load_segments"]
