"""Candidate search: which blocks lie near a GPS fix, and where on them.

One STRtree over the blocks' projected centrelines answers a whole batch of fixes in
a single vectorised query; projection onto the lines and the local driving direction
are computed with numpy for all (fix, block) pairs at once. Per-fix Python work is
what makes a matcher slow, so none happens here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import shapely
from shapely import STRtree

from geo.projection import FloatArray

IntArray = npt.NDArray[np.int64]
CHUNK_M = 100.0


class SegmentIndex:
    """Blocks as projected polylines, indexed for nearest-line queries."""

    def __init__(self, lines_xy: Sequence[FloatArray]) -> None:
        self.lines = np.array([shapely.linestrings(xy) for xy in lines_xy], dtype=object)
        # The index holds chunks of at most ~CHUNK_M of each block, not whole blocks:
        # a long mountain road passes close to itself at every hairpin, and a fix
        # there must get a candidate on each leg, not just the single nearest point.
        chunks, chunk_seg, chunk_base = [], [], []
        for k, xy in enumerate(lines_xy):
            d = np.hypot(*np.diff(xy, axis=0).T)
            cum = np.concatenate(([0.0], np.cumsum(d)))
            start = 0
            while start < len(xy) - 1:
                end = start + 1
                while end < len(xy) - 1 and cum[end + 1] - cum[start] <= CHUNK_M:
                    end += 1
                chunks.append(shapely.linestrings(xy[start:end + 1]))
                chunk_seg.append(k)
                chunk_base.append(cum[start])
                start = end
        self.chunks = np.array(chunks, dtype=object)
        self.chunk_seg = np.asarray(chunk_seg, dtype=np.int64)
        self.chunk_base = np.asarray(chunk_base, dtype=np.float64)
        self.tree = STRtree(self.chunks)
        # All polyline pieces laid end to end on one axis, each block starting one
        # metre past the previous one's end, so one searchsorted finds the piece under
        # any (block, offset) pair without a Python loop.
        starts, dirs, bases = [], [], []
        base = 0.0
        for xy in lines_xy:
            d = np.diff(xy, axis=0)
            seg_len = np.hypot(d[:, 0], d[:, 1])
            cum = np.concatenate(([0.0], np.cumsum(seg_len)))
            bases.append(base)
            starts.append(base + cum[:-1])
            safe = np.where(seg_len > 0, seg_len, 1.0)
            dirs.append(d / safe[:, None])
            base += float(cum[-1]) + 1.0
        self.base = np.asarray(bases, dtype=np.float64)
        self.piece_start = np.concatenate(starts)
        self.piece_dir = np.concatenate(dirs)
        self.length = np.asarray(shapely.length(self.lines), dtype=np.float64)

    def near(
        self, xs: FloatArray, ys: FloatArray, radius: FloatArray
    ) -> tuple[IntArray, IntArray, FloatArray, FloatArray, FloatArray, FloatArray]:
        """(fix, block chunk) pairs within ``radius`` of each fix.

        Returns fix index, block index, offset along the block (from its first
        coordinate, metres), distance, and the unit direction (dx, dy) of the block's
        coordinates at that offset; sorted by fix, then distance. A block can appear
        more than once for a fix (once per chunk near it).
        """
        pts = shapely.points(xs, ys)
        pair = self.tree.query(pts, predicate="dwithin", distance=radius)
        fix = pair[0].astype(np.int64)
        chunk = pair[1].astype(np.int64)
        seg = self.chunk_seg[chunk]
        lines = self.chunks[chunk]
        offset = self.chunk_base[chunk] + np.asarray(
            shapely.line_locate_point(lines, pts[fix]), dtype=np.float64)
        dist = np.asarray(shapely.distance(lines, pts[fix]), dtype=np.float64)
        order = np.lexsort((dist, fix))
        fix, seg, offset, dist = fix[order], seg[order], offset[order], dist[order]
        # Just inside the block so a fix projecting onto a vertex gets the piece it
        # is on, not the next block's first piece.
        where = self.base[seg] + np.minimum(offset, np.maximum(self.length[seg] - 1e-6, 0.0))
        piece = np.searchsorted(self.piece_start, where, side="right") - 1
        direction = self.piece_dir[piece]
        return fix, seg, offset, dist, direction[:, 0].copy(), direction[:, 1].copy()
