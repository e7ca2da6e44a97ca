"""Read highway ways with node locations from OSM files (.osm.pbf, .osm, .osm.gz, .osm.bz2)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import osmium

from geo.network import Coord, RawWay

log = logging.getLogger(__name__)


@dataclass(slots=True)
class OsmReadStats:
    """What the reader had to drop or trim, so callers can tell a clipped extract."""

    ways: int = 0  # highway ways yielded
    trimmed: int = 0  # clipped at the extract edge, yielded without the missing ends
    skipped_missing_nodes: int = 0  # not yielded: a hole in the middle or < 2 nodes located


def read_osm(
    path: Path | str, *, stats: OsmReadStats | None = None, trim_clipped: bool = True
) -> Iterator[RawWay]:
    """Yield every way tagged ``highway`` with its node ids and (lon, lat) coordinates.

    Extracts cut by a bounding box keep ways whose outer nodes lie outside the box and
    are missing from the file. With ``trim_clipped`` (the default) such a way is kept
    up to its last located node, because dropping it would lose whole streets at the
    edge of the town (about a tenth of the ways of the Kouvola test extract). A way
    missing nodes anywhere else is skipped: joining across the hole would invent road.
    """
    stats = stats if stats is not None else OsmReadStats()
    processor = (
        osmium.FileProcessor(str(path), osmium.osm.NODE | osmium.osm.WAY)
        .with_locations()
        # The location cache sees every node before these filters run, so filtering
        # nodes out here only saves Python work, not coordinates.
        .with_filter(osmium.filter.EntityFilter(osmium.osm.WAY))
        .with_filter(osmium.filter.KeyFilter("highway"))
    )
    for way in processor:
        if not isinstance(way, osmium.osm.Way):
            continue
        refs: list[int] = []
        coords: list[Coord | None] = []
        for nd in way.nodes:
            refs.append(nd.ref)
            loc = nd.location
            coords.append((loc.lon, loc.lat) if loc.valid() else None)
        located = [i for i, c in enumerate(coords) if c is not None]
        if len(located) == len(coords) and len(coords) >= 2:
            a, b = 0, len(coords)
        elif trim_clipped and len(located) >= 2 and located[-1] - located[0] + 1 == len(located):
            a, b = located[0], located[-1] + 1
            stats.trimmed += 1
        else:
            stats.skipped_missing_nodes += 1
            continue
        stats.ways += 1
        yield RawWay(
            way_id=f"w{way.id}",
            tags={t.k: t.v for t in way.tags},
            node_ids=tuple(refs[a:b]),
            coords=tuple(c for c in coords[a:b] if c is not None),
        )
    if stats.trimmed or stats.skipped_missing_nodes:
        log.info(
            "%s: %d highway ways, %d trimmed at the extract edge, %d skipped for missing nodes",
            path, stats.ways, stats.trimmed, stats.skipped_missing_nodes,
        )
