"""Database-side actions behind the CLI (kept apart so tests can call them directly)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.db import connect
from app.dbadmin import create_database
from app.errors import InvalidInput
from app.importer import ImportResult, import_segments
from app.migrate import migrate as apply_migrations
from app.settings import Settings

if TYPE_CHECKING:
    import asyncpg

    from geo.network import Segment

# Dead ends this close to a street they do not meet are listed after an import.
UNDERSHOOT_M = 5.0


async def migrate(settings: Settings, *, create: bool = False) -> int:
    if create and await create_database(settings.database.url):
        print("created database")
    conn = await connect(settings.database)
    try:
        applied = await apply_migrations(conn, settings.database.migrations_dir)
    finally:
        await conn.close()
    print(f"applied {len(applied)} migration(s)" + (": " + ", ".join(applied) if applied
                                                    else "; schema is up to date"))
    return 0


async def add_town(settings: Settings, slug: str, name: str, timezone: str) -> int:
    conn = await connect(settings.database)
    try:
        await conn.execute(
            """INSERT INTO towns (slug, name, timezone) VALUES ($1, $2, $3)
               ON CONFLICT (slug) DO UPDATE SET name = EXCLUDED.name,
                                                timezone = EXCLUDED.timezone""",
            slug, name, timezone,
        )
    finally:
        await conn.close()
    print(f"town {slug}: {name}")
    return 0


async def list_towns(settings: Settings) -> int:
    conn = await connect(settings.database)
    try:
        for r in await conn.fetch("SELECT slug, name FROM towns ORDER BY slug"):
            print(f"{r['slug']}\t{r['name']}")
    finally:
        await conn.close()
    return 0


async def import_streets(
    settings: Settings, town: str, path: Path, **options: Any
) -> int:
    started = time.monotonic()
    result = await import_streets_file(settings, town, path, progress=_progress, **options)
    print(f"{path.name}: {result.added} segments added, {result.unchanged} unchanged, "
          f"{result.retired} retired in {time.monotonic() - started:.1f}s")
    return 0


def _progress(message: str) -> None:
    print(f"  {message}", file=sys.stderr, flush=True)


async def import_streets_file(
    settings: Settings,
    town: str,
    path: Path,
    *,
    progress: Callable[[str], None] | None = None,
    **options: Any,
) -> ImportResult:
    """Read a street file and import it into a town. ``options`` go to load_segments
    (GeoJSON: split, id_property, name_property, oneway_default)."""
    from app.streets.load import load_segments

    say = progress or (lambda _m: None)
    conn = await connect(settings.database)
    try:
        town_id = await conn.fetchval("SELECT id FROM towns WHERE slug = $1", town)
        if town_id is None:
            raise LookupError(f"no town '{town}': add it with `plowshare towns add`")
        t0 = time.monotonic()
        say(f"reading {path.name} …")
        try:
            segments = load_segments(path, **options)
        except (OSError, ValueError, RuntimeError) as exc:
            # osmium reports unreadable files as RuntimeError, gzip as OSError, the
            # GeoJSON reader (and orjson) as ValueError: all the file's fault.
            raise InvalidInput(f"cannot read {path.name}: {exc}") from exc
        if not segments:
            # Importing nothing would retire the town's whole network.
            raise InvalidInput(f"{path.name}: no drivable street segments in it; "
                               "nothing imported")
        say(f"{len(segments):,} block segments built in {time.monotonic() - t0:.1f}s; "
            "loading into PostGIS …")
        report_breaks(segments, say, await _map_gap_m(conn, settings, town_id))
        return await import_segments(conn, town_id, segments, progress)
    finally:
        await conn.close()


async def _map_gap_m(conn: asyncpg.Connection, settings: Settings, town_id: int) -> float:
    """The town's matcher joins dead ends this close (deployment's, then its own)."""
    from app.queries import town_match_config

    config, _ = settings.coverage.town_match_config(await town_match_config(conn, town_id))
    return config.map_gap_m


def report_breaks(segments: list[Segment], say: Callable[[str], None], within: float) -> None:
    """Places where the file most likely breaks a road, for its owners to check: dead
    ends a few metres apart (the matcher joins them; a few are real barriers), and dead
    ends a few metres short of another street (not joined)."""
    from geo.gaps import dead_end_gaps, undershoots

    gaps = dead_end_gaps(segments, within)
    if gaps:
        say(f"{len(gaps)} place(s) where two dead ends lie within {within:g} m of each "
            f"other, taken as one road the file breaks (check them): " + _first_ten(
                [f"{g.segment_a}/{g.segment_b} {g.distance_m:.1f} m" for g in gaps]))
    short = undershoots(segments, UNDERSHOOT_M)
    if short:
        say(f"{len(short)} dead end(s) stop within {UNDERSHOOT_M:g} m of a street they do not "
            f"meet (a junction the file lacks? vehicles cannot be matched across): "
            + _first_ten([f"{u.segment} {u.distance_m:.1f} m from {u.near}" for u in short]))


def _first_ten(items: list[str]) -> str:
    more = f" and {len(items) - 10} more" if len(items) > 10 else ""
    return ", ".join(items[:10]) + more


async def storm(settings: Settings, town: str, *, start: bool, name: str | None = None) -> int:
    from app.storms import end_storm, start_storm

    conn = await connect(settings.database)
    try:
        if start:
            s = await start_storm(conn, town, name)
            print(f"storm {s.id} started in {town} at {s.started_at.isoformat()}")
        else:
            s = await end_storm(conn, town)
            assert s.ended_at is not None
            print(f"storm {s.id} in {town} ended at {s.ended_at.isoformat()}")
    finally:
        await conn.close()
    return 0


async def retention(settings: Settings, days: int) -> int:
    from ingest.retention import apply_retention

    conn = await connect(settings.database)
    try:
        result = await apply_retention(conn, days)
    finally:
        await conn.close()
    print(f"dropped {len(result.dropped_partitions)} day(s) of pings "
          f"({', '.join(result.dropped_partitions) or 'none'}), "
          f"deleted {result.deleted_rejections} quarantined message(s)")
    return 0


async def import_addresses(settings: Settings, town: str, path: Path, id_property: str) -> int:
    from app.addresses import import_address_ranges
    from app.streets.geojson import read_geojson

    features = read_geojson(path)
    conn = await connect(settings.database)
    try:
        town_id = await conn.fetchval("SELECT id FROM towns WHERE slug = $1", town)
        if town_id is None:
            raise LookupError(f"no town '{town}': add it with `plowshare towns add`")
        n = await import_address_ranges(conn, town_id, features, id_property)
    finally:
        await conn.close()
    print(f"{path.name}: address ranges for {n} segments of {town}")
    return 0
