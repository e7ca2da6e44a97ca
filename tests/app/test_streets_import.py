"""`plowshare streets import` into PostGIS, and re-imports that keep the history.

Real Krems streets (OSM, and as a town's GeoJSON of ready block segments) into a real
PostGIS database, through the command line as a town's IT department runs it.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from app.importer import import_segments
from app.streets.load import load_segments
from geo.network import Segment
from tests.geo.geo_shared_data import shared_data
from tests.support import add_town

PLOWSHARE = str(Path(sys.executable).with_name("plowshare"))
KREMS = shared_data("osm", "krems.osm.gz")


def _cli(database: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PLOWSHARE_DATABASE_URL": database}
    return subprocess.run([PLOWSHARE, *map(str, args)], env=env, capture_output=True,
                          text=True, timeout=120)


async def _current(conn: asyncpg.Connection, town_id: int) -> dict[str, int]:
    rows = await conn.fetch("SELECT source_id, id FROM street_segments "
                            "WHERE town_id = $1 AND valid_to IS NULL", town_id)
    return {r["source_id"]: r["id"] for r in rows}


async def _serviced(conn: asyncpg.Connection, town_id: int, segment_id: int) -> None:
    """A pass on the segment, as the live coverage worker records it."""
    now = datetime.now(UTC)
    await conn.execute(
        """INSERT INTO segment_status (town_id, segment_id, storm_key, first_service,
                                       last_service, passes)
           VALUES ($1, $2, 0, $3, $3, 1)""", town_id, segment_id, now)


async def test_an_osm_import_shows_progress_and_an_unchanged_re_import_keeps_every_row(
    database: str, conn: asyncpg.Connection
) -> None:
    town = await add_town(conn, "krems", "Krems")
    expected = load_segments(KREMS)
    first = _cli(database, "streets", "import", "--town", "krems", KREMS)
    assert first.returncode == 0, first.stderr
    assert f"{len(expected)} segments added, 0 unchanged, 0 retired" in first.stdout
    # Progress on stderr, so a script reading stdout sees only the summary.
    assert "reading krems.osm.gz" in first.stderr
    assert f"{len(expected):,} block segments built" in first.stderr
    assert f"{len(expected):,} segments staged" in first.stderr
    assert "0 retired (changed or gone)" in first.stderr
    rows = await _current(conn, town)
    assert set(rows) == {s.source_id for s in expected}
    stored = await conn.fetchrow(
        "SELECT name, road_class, oneway, priority, length_m, ST_NPoints(geom) AS n "
        "FROM street_segments WHERE id = $1", rows[expected[0].source_id])
    s = expected[0]
    assert (stored["name"], stored["road_class"], stored["oneway"], stored["priority"]) == (
        s.name, s.road_class, s.oneway, s.priority)
    assert abs(stored["length_m"] - s.length_m) < 1e-6 and stored["n"] == len(s.coords)
    await _serviced(conn, town, rows[s.source_id])

    again = _cli(database, "streets", "import", "--town", "krems", KREMS)
    assert again.returncode == 0, again.stderr
    assert f"0 segments added, {len(expected)} unchanged, 0 retired" in again.stdout
    assert await _current(conn, town) == rows  # the same rows, not copies
    assert await conn.fetchval(
        "SELECT count(*) FROM street_segments WHERE town_id = $1", town) == len(expected)
    assert await conn.fetchval(
        "SELECT segment_id FROM segment_status WHERE town_id = $1", town) == rows[s.source_id]


def _feature(s: Segment, **override: object) -> dict[str, object]:
    props = {"id": s.source_id, "name": s.name, "highway": s.road_class,
             "oneway": "yes" if s.oneway else "no"}
    coords = override.pop("coords", s.coords)
    props.update(override)
    return {"type": "Feature", "properties": props,
            "geometry": {"type": "LineString", "coordinates": [list(c) for c in coords]}}


def _write(path: Path, features: list[dict[str, object]]) -> Path:
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return path


async def test_a_re_import_retires_what_changed_and_keeps_the_history_of_the_rest(
    database: str, conn: asyncpg.Connection, tmp_path: Path
) -> None:
    # A town's GIS file of ready block segments, then its next edition: one block
    # re-digitised, one renamed, one gone, one new.
    town = await add_town(conn, "krems", "Krems")
    blocks = [s for s in load_segments(KREMS) if s.name][:40]
    edition1 = [_feature(s) for s in blocks[:-1]]
    moved, renamed, gone, new = blocks[3], blocks[7], blocks[11], blocks[-1]
    path = _write(tmp_path / "streets-2025.geojson", edition1)
    assert _cli(database, "streets", "import", "--town", "krems", path).returncode == 0
    before = await _current(conn, town)
    assert len(before) == len(edition1)
    for s in (moved, renamed, gone, blocks[0]):
        await _serviced(conn, town, before[s.source_id])

    bent = list(moved.coords)
    bent.insert(1, ((bent[0][0] + bent[1][0]) / 2 + 1e-5, (bent[0][1] + bent[1][1]) / 2))
    edition2 = [
        _feature(s, coords=bent) if s is moved
        else _feature(s, name=f"{s.name} (renamed)") if s is renamed
        else _feature(s)
        for s in blocks[:-1] if s is not gone
    ] + [_feature(new)]
    path = _write(tmp_path / "streets-2026.geojson", edition2)
    done = _cli(database, "streets", "import", "--town", "krems", path)
    assert done.returncode == 0, done.stderr
    kept = len(edition1) - 3
    assert f"3 segments added, {kept} unchanged, 3 retired" in done.stdout
    after = await _current(conn, town)
    assert set(after) == {s.source_id for s in blocks if s is not gone}
    # Unchanged blocks keep their rows, so their history; changed ones get new rows,
    # and the old rows, retired, keep theirs.
    for s in blocks[:-1]:
        if s not in (moved, renamed, gone):
            assert after[s.source_id] == before[s.source_id], s.source_id
    for s in (moved, renamed):
        assert after[s.source_id] != before[s.source_id]
    retired = await conn.fetch(
        "SELECT id, source_id FROM street_segments WHERE town_id = $1 AND valid_to IS NOT NULL",
        town)
    assert {r["source_id"]: r["id"] for r in retired} == {
        s.source_id: before[s.source_id] for s in (moved, renamed, gone)}
    history = {r["segment_id"] for r in await conn.fetch(
        "SELECT segment_id FROM segment_status WHERE town_id = $1", town)}
    assert history == {before[s.source_id] for s in (moved, renamed, gone, blocks[0])}
    assert await conn.fetchval(
        "SELECT name FROM street_segments WHERE id = $1", after[renamed.source_id]
    ) == f"{renamed.name} (renamed)"


async def test_a_missing_file_or_unknown_town_is_a_clear_error(
    database: str, conn: asyncpg.Connection, tmp_path: Path
) -> None:
    await add_town(conn, "krems", "Krems")
    missing = _cli(database, "streets", "import", "--town", "krems", tmp_path / "nope.osm")
    assert missing.returncode == 2 and "no such file" in missing.stderr
    nowhere = _cli(database, "streets", "import", "--town", "atlantis", KREMS)
    assert nowhere.returncode == 2 and "no town 'atlantis'" in nowhere.stderr
    broken = tmp_path / "broken.geojson"
    broken.write_text('{"type": "FeatureCollection", "features": [')
    bad = _cli(database, "streets", "import", "--town", "krems", broken)
    assert bad.returncode == 2 and "cannot read broken.geojson" in bad.stderr, bad.stderr
    assert "Traceback" not in bad.stderr
    # A file with no streets in it (here: only a footway) must not retire the network.
    assert _cli(database, "streets", "import", "--town", "krems", KREMS).returncode == 0
    count = await conn.fetchval("SELECT count(*) FROM street_segments WHERE valid_to IS NULL")
    path = _write(tmp_path / "paths.geojson", [{
        "type": "Feature", "properties": {"id": "p1", "highway": "footway"},
        "geometry": {"type": "LineString", "coordinates": [[15.6, 48.41], [15.601, 48.41]]}}])
    empty = _cli(database, "streets", "import", "--town", "krems", path)
    assert empty.returncode == 2 and "no drivable street segments" in empty.stderr
    assert await conn.fetchval(
        "SELECT count(*) FROM street_segments WHERE valid_to IS NULL") == count


async def test_an_import_lists_dead_ends_a_few_metres_apart(
    database: str, conn: asyncpg.Connection, tmp_path: Path
) -> None:
    # Real track 00000075's map (North Zealand, as GeoJSON arcs): the service road
    # of arc 507 ends 10.6 m short of arc 509's; the car drove across. The matcher
    # joins such dead ends; whoever keeps the file should hear of them.
    await add_town(conn, "gribskov", "Gribskov")
    path = shared_data("gps-truth", "00000075_network.geojson.gz")
    done = _cli(database, "streets", "import", "--town", "gribskov", "--id-property",
                "arc_id", path)
    assert done.returncode == 0, done.stderr
    assert ("2 place(s) where two dead ends lie within 15 m of each other, taken as one "
            "road the file breaks (check them): 507/509 10.6 m, 1328/1348 12.6 m"
            ) in done.stderr
    # A network without any says nothing of them.
    line = [{"type": "Feature", "properties": {"id": f"b{k}", "highway": "residential"},
             "geometry": {"type": "LineString",
                          "coordinates": [[15.6 + 0.001 * k, 48.41], [15.601 + 0.001 * k, 48.41]]}}
            for k in range(3)]
    quiet = _cli(database, "streets", "import", "--town", "gribskov",
                 _write(tmp_path / "line.geojson", line))
    assert quiet.returncode == 0 and "dead end" not in quiet.stderr, quiet.stderr
    # A town that turned the joining off (a barrier between them) hears of no such pairs.
    await conn.execute("""UPDATE town_settings SET match_config = '{"map_gap_m": 0}'::jsonb
                           WHERE town_id = (SELECT id FROM towns WHERE slug = 'gribskov')""")
    off = _cli(database, "streets", "import", "--town", "gribskov", "--id-property",
               "arc_id", path)
    assert off.returncode == 0 and "two dead ends" not in off.stderr, off.stderr
    # A side street that stops 3 m short of the road's middle: the junction is missing.
    lon = 15.6 + 40 / (111_320.0 * math.cos(math.radians(48.41)))
    short = [{"type": "Feature", "properties": {"id": sid, "highway": "residential"},
              "geometry": {"type": "LineString", "coordinates": xy}}
             for sid, xy in (("road", [[15.599, 48.41], [15.601, 48.41]]),
                             ("side", [[lon, 48.409], [lon, 48.41 - 3 / 110_950.0]]))]
    told = _cli(database, "streets", "import", "--town", "gribskov",
                _write(tmp_path / "short.geojson", short))
    assert told.returncode == 0, told.stderr
    assert ("1 dead end(s) stop within 5 m of a street they do not meet (a junction the "
            "file lacks? vehicles cannot be matched across): side 3.0 m from road"
            ) in told.stderr, told.stderr


async def test_a_block_whose_nodes_change_is_a_changed_block(conn: asyncpg.Connection) -> None:
    # OSM can join a block to another way at a new node in the same place: same
    # geometry, other node ids. The matcher builds its graph from the stored nodes,
    # so such a block must be re-inserted, not kept with the old ones.
    town = await add_town(conn, "krems", "Krems")
    blocks = load_segments(KREMS)[:20]
    await import_segments(conn, town, blocks)
    before = await _current(conn, town)
    rejoined = dataclasses.replace(blocks[5], end_node="n-elsewhere")
    result = await import_segments(conn, town, [*blocks[:5], rejoined, *blocks[6:]])
    assert (result.added, result.unchanged, result.retired) == (1, 19, 1)
    after = await _current(conn, town)
    assert after[rejoined.source_id] != before[rejoined.source_id]
    assert await conn.fetchval("SELECT end_node FROM street_segments WHERE id = $1",
                               after[rejoined.source_id]) == "n-elsewhere"
