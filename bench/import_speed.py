"""How long a 100,000-segment street network takes to import (issue #3 asks for under a
minute). A synthetic grid city (real coordinates, block-sized segments) is written as a
GeoJSON file, then read, built and loaded into a scratch PostGIS database exactly as
`plowshare streets import` does; a second import of the same file measures the
re-import path (everything unchanged).

    .venv/bin/python -m bench.import_speed [--segments 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import secrets
import tempfile
import time
from pathlib import Path

from app.commands import report_breaks
from app.db import connect
from app.dbadmin import create_database, drop_database
from app.importer import import_segments
from app.migrate import migrate
from app.settings import REPO_ROOT, DatabaseSettings
from app.streets.load import load_segments
from geo.matchtypes import MatchConfig

ADMIN = os.environ.get("PLOWSHARE_TEST_ADMIN_URL",
                       "postgresql://plowshare:plowshare@127.0.0.1:5432/postgres")


def grid_geojson(path: Path, segments: int) -> None:
    # n x n intersections give 2 n (n - 1) blocks; blocks ~100 m apart around Kouvola.
    n = math.ceil((1 + math.sqrt(1 + 2 * segments)) / 2)
    dlat, dlon = 0.0009, 0.0018
    feats = []
    for i in range(n):
        for j in range(n):
            lat, lon = 60.8 + i * dlat, 26.6 + j * dlon
            if j + 1 < n:
                feats.append(((lon, lat), (lon + dlon, lat)))
            if i + 1 < n:
                feats.append(((lon, lat), (lon, lat + dlat)))
    feats = feats[:segments]
    doc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "id": f"s{k}",
         "properties": {"name": f"Street {k % 997}", "highway": "residential"},
         "geometry": {"type": "LineString", "coordinates": [list(a), list(b)]}}
        for k, (a, b) in enumerate(feats)]}
    path.write_text(json.dumps(doc))


async def main(segments: int) -> None:
    url = ADMIN.rsplit("/", 1)[0] + f"/plowshare_bench_{secrets.token_hex(4)}"
    await create_database(url)
    try:
        conn = await connect(DatabaseSettings(url=url))
        await migrate(conn, REPO_ROOT / "migrations")
        town = await conn.fetchval(
            "INSERT INTO towns (slug, name) VALUES ('grid', 'Grid') RETURNING id")
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "grid.geojson"
            grid_geojson(path, segments)
            for label in ("first import", "re-import (unchanged)"):
                t0 = time.perf_counter()
                built = load_segments(path)
                report_breaks(built, lambda _m: None, MatchConfig().map_gap_m)  # as the CLI
                t1 = time.perf_counter()
                result = await import_segments(conn, town, built)
                t2 = time.perf_counter()
                print(f"{label}: {len(built):,} segments — read+build {t1 - t0:.1f}s, "
                      f"load {t2 - t1:.1f}s, total {t2 - t0:.1f}s "
                      f"(added {result.added:,}, unchanged {result.unchanged:,}, "
                      f"retired {result.retired:,})")
        await conn.close()
    finally:
        await drop_database(url)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--segments", type=int, default=100_000)
    asyncio.run(main(parser.parse_args().segments))
