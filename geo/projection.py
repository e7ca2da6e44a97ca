"""A local metric plane for one street network.

Map matching measures distances in metres thousands of times per second; doing that
geodesically is far too slow and doing it with shapely on degrees is wrong (a degree
of longitude is ~30 % shorter than one of latitude at 48° N). A transverse Mercator
centred on the network keeps scale error below 1e-5 within ~30 km of the centre,
which is far below GPS noise, so plain Euclidean geometry on it is honest.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt
from pyproj import Transformer

from geo.network import Coord

FloatArray = npt.NDArray[np.float64]


class LocalProjection:
    """lon/lat (WGS84) <-> x east / y north in metres, centred on a point."""

    __slots__ = ("_fwd", "_inv", "lat0", "lon0")

    def __init__(self, lon0: float, lat0: float) -> None:
        self.lon0, self.lat0 = lon0, lat0
        crs = (f"+proj=tmerc +lat_0={lat0!r} +lon_0={lon0!r} +k=1 +x_0=0 +y_0=0 "
               "+ellps=WGS84 +units=m +no_defs")
        self._fwd = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
        self._inv = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)

    @classmethod
    def around(cls, coords: Iterable[Coord]) -> LocalProjection:
        """Centred on the bounding box of ``coords`` (the middle of the town)."""
        pts = np.asarray(list(coords), dtype=np.float64)
        if pts.size == 0:
            raise ValueError("cannot centre a projection on no coordinates")
        lon0 = float((pts[:, 0].min() + pts[:, 0].max()) / 2)
        lat0 = float((pts[:, 1].min() + pts[:, 1].max()) / 2)
        return cls(lon0, lat0)

    def to_xy(self, lons: Sequence[float] | FloatArray,
              lats: Sequence[float] | FloatArray) -> tuple[FloatArray, FloatArray]:
        xs, ys = self._fwd.transform(np.asarray(lons, dtype=np.float64),
                                     np.asarray(lats, dtype=np.float64))
        return np.asarray(xs, dtype=np.float64), np.asarray(ys, dtype=np.float64)

    def point_xy(self, lon: float, lat: float) -> tuple[float, float]:
        x, y = self._fwd.transform(lon, lat)
        return float(x), float(y)

    def to_lonlat(self, xs: Sequence[float] | FloatArray,
                  ys: Sequence[float] | FloatArray) -> tuple[FloatArray, FloatArray]:
        lons, lats = self._inv.transform(np.asarray(xs, dtype=np.float64),
                                         np.asarray(ys, dtype=np.float64))
        return np.asarray(lons, dtype=np.float64), np.asarray(lats, dtype=np.float64)
