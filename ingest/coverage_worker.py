"""Live coverage inside the ingest process: committed fixes → map matcher → service
passes and per-storm segment status → live channel.

Fixes are read back from the database per vehicle in fix-time order (the primary key),
not taken from the MQTT stream, so it does not matter which ingest worker stored them or
in which order they arrived. A fix is fed only once it is ``settle_s`` old, which gives
slightly out-of-order arrivals time to land first. Each town is matched by one worker at a
time: a worker claims a town with a PostgreSQL advisory lock held on its own connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import asyncpg

from app.importer import town_segments
from app.queries import town_match_config
from app.settings import Settings
from geo.coverage import CoverageBook, ServiceEvent
from geo.match import MatchConfig, Matcher, Ping, Traversal
from geo.track import Track
from ingest import coverage_store as store
from ingest.metrics import IngestMetrics

log = logging.getLogger(__name__)

_LOCK_SPACE = 0x636F76  # "cov": advisory lock key space for town claims
_SET_ASIDE_S = 60.0  # how long a town whose matching failed waits before a retry


@dataclass
class TownState:
    town_id: int
    slug: str
    signature: tuple[int, int]
    config: MatchConfig
    matcher: Matcher
    book: CoverageBook
    segment_ids: dict[str, int]
    tracks: dict[int, Track] = field(default_factory=dict)
    last_fix: dict[int, datetime] = field(default_factory=dict)


class CoverageWorker:
    def __init__(self, settings: Settings, pool: asyncpg.Pool, metrics: IngestMetrics) -> None:
        self.settings = settings
        self.cfg = settings.coverage
        self.pool = pool
        self.metrics = metrics
        self.towns: dict[int, TownState] = {}
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._set_aside: dict[int, float] = {}
        self._bad_config: dict[str, str] = {}  # town slug -> the error last logged

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    async def run(self) -> None:
        """Match until stopped. Nothing here may end the ingest worker: a database outage
        is waited out, and a fault in one town's matching sets that town aside for a
        while without touching the others or the storing of fixes."""
        lock_conn: asyncpg.Connection | None = None
        claimed: dict[int, str] = {}
        try:
            while not self._stop.is_set():
                try:
                    if lock_conn is None or lock_conn.is_closed():
                        claimed.clear()  # the locks went with the old connection
                        self.towns.clear()
                        lock_conn = await asyncpg.connect(self.settings.database.url)
                    await self._claim(lock_conn, claimed)
                except Exception as exc:
                    # Outages show up as many exception types (asyncpg's
                    # InternalClientError among them, after a server restart): whatever
                    # it was, drop the connection and claim afresh next round.
                    log.warning("coverage: cannot claim towns: %r", exc)
                    if lock_conn is not None:
                        lock_conn.terminate()
                        lock_conn = None
                else:
                    for town_id, slug in list(claimed.items()):
                        await self._round(town_id, slug)
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.cfg.interval_s)
        finally:
            if lock_conn is not None:
                with contextlib.suppress(Exception):
                    await lock_conn.close()

    async def _round(self, town_id: int, slug: str) -> None:
        if time.monotonic() < self._set_aside.get(town_id, 0.0):
            return
        try:
            await self.step(town_id, slug)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            # What the matcher holds may be ahead of what was committed: start the town
            # afresh from the stored cursors (passes already stored are not stored twice).
            log.warning("coverage round for %s failed: %s", slug, exc)
            self.towns.pop(town_id, None)
        except Exception:
            log.exception("coverage for %s failed; retrying in %.0fs", slug, _SET_ASIDE_S)
            self.metrics.coverage_errors.inc()
            self.towns.pop(town_id, None)
            self._set_aside[town_id] = time.monotonic() + _SET_ASIDE_S

    async def _claim(self, lock_conn: asyncpg.Connection, claimed: dict[int, str]) -> None:
        for r in await lock_conn.fetch("SELECT id, slug FROM towns ORDER BY id"):
            if r["id"] in claimed:
                continue
            if await lock_conn.fetchval("SELECT pg_try_advisory_lock($1, $2::int)",
                                        _LOCK_SPACE, r["id"]):
                claimed[r["id"]] = r["slug"]
                log.info("coverage: matching town %s", r["slug"])

    async def step(self, town_id: int, slug: str) -> int:
        """One round for one town; returns how many fixes were fed."""
        state = await self._town(town_id, slug)
        if state is None:
            return 0
        now = datetime.now(UTC)
        horizon = now - timedelta(seconds=self.cfg.settle_s)
        fed = 0
        async with self.pool.acquire() as conn:
            for v in await store.pending_vehicles(conn, town_id):
                try:
                    fed += await self._feed_vehicle(conn, state, v, horizon)
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                    raise
                except Exception:
                    # A matcher fault on some fixes must not stop ingestion or wedge this
                    # vehicle: log it, count it, skip those fixes for coverage (they stay
                    # stored) and start the vehicle's track afresh.
                    log.exception("coverage: matching failed for vehicle %d", v.vehicle_id)
                    self.metrics.coverage_errors.inc()
                    state.tracks.pop(v.vehicle_id, None)
                    state.last_fix.pop(v.vehicle_id, None)
                    await store.advance_cursor(conn, v.vehicle_id, town_id, horizon)
            await self._flush_silent(conn, state, now)
            fed += await self._feed_late(conn, state)
        return fed

    async def _feed_late(self, conn: asyncpg.Connection, state: TownState) -> int:
        """Fixes stored behind a vehicle's cursor (live fixes first, the buffer of a
        tunnel later) are matched as runs of their own, in fix-time order, with a book
        key of their own so they do not break the vehicle's live pass."""
        rows = await store.late_fixes(conn, state.town_id, self.cfg.max_fixes_per_round)
        if not rows:
            return 0
        by_vehicle: dict[int, list[asyncpg.Record]] = {}
        for r in rows:
            by_vehicle.setdefault(r["vehicle_id"], []).append(r)
        for vehicle_id, fixes in by_vehicle.items():
            key = f"{fixes[0]['ident']}#late"
            track = state.matcher.track(key)
            traversals = await asyncio.to_thread(_push_all, track, [_ping(key, r) for r in fixes])
            traversals += track.flush()
            await self._record(conn, state, vehicle_id, traversals, cursor=None)
        await store.forget_late(conn, rows)
        self.metrics.coverage_late_fixes.inc(len(rows))
        return len(rows)

    async def _town(self, town_id: int, slug: str) -> TownState | None:
        async with self.pool.acquire() as conn:
            signature = await store.segment_signature(conn, town_id)
            config = self._config(slug, await town_match_config(conn, town_id))
            state = self.towns.get(town_id)
            same_streets = state is not None and state.signature == signature
            if not same_streets and signature[0] == 0:
                return None
            rows = [] if same_streets else await town_segments(conn, town_id)
        if state is not None and same_streets:
            if state.config != config:
                await self._retune(state, config)
            return state
        segments = [segment for _id, segment in rows]
        matcher = await asyncio.to_thread(Matcher, segments, config)
        state = TownState(
            town_id=town_id, slug=slug, signature=signature, config=config, matcher=matcher,
            book=CoverageBook(segments, min_fraction=self.cfg.min_fraction,
                              keep_history=False),
            segment_ids={segment.source_id: sid for sid, segment in rows},
        )
        self.towns[town_id] = state
        log.info("coverage: %s has %d segments", slug, len(segments))
        return state

    async def _retune(self, state: TownState, config: MatchConfig) -> None:
        """The town's matcher settings changed: each vehicle's track so far is finished
        with the old ones and recorded, and its next fixes go to a new track with the
        new ones (cut there, as at a long silence: no re-feeding, so nothing twice)."""
        matcher = await asyncio.to_thread(Matcher, state.matcher.segments, config)
        async with self.pool.acquire() as conn:
            for vehicle_id, track in list(state.tracks.items()):
                await self._record(conn, state, vehicle_id, track.flush(), cursor=None)
                state.tracks[vehicle_id] = matcher.track(track.vehicle)
        state.matcher, state.config = matcher, config
        log.info("coverage: %s matcher settings changed; %d tracks cut over",
                 state.slug, len(state.tracks))

    def _config(self, slug: str, town: dict[str, object]) -> MatchConfig:
        """The deployment's matcher settings with the town's own on top. A town's that
        are not valid (the API checks them; this is SQL written by hand) are left out,
        loudly, rather than stopping the town's coverage."""
        config, problem = self.cfg.town_match_config(town)
        if problem is None:
            self._bad_config.pop(slug, None)
        elif self._bad_config.get(slug) != problem:
            self._bad_config[slug] = problem
            log.error("coverage: %s: town_settings.match_config ignored: %s", slug, problem)
        return config

    async def _feed_vehicle(
        self, conn: asyncpg.Connection, state: TownState, v: store.PendingVehicle,
        horizon: datetime,
    ) -> int:
        track = state.tracks.get(v.vehicle_id)
        after = v.fed_until
        if track is None:
            track = state.matcher.track(v.ident)
            state.tracks[v.vehicle_id] = track
            if after is not None:
                # This process has no matcher state for the vehicle (restart): re-feed a
                # little history so the fixed-lag window is rebuilt; passes recorded
                # before are not recorded twice.
                after -= timedelta(seconds=self.cfg.rewind_s)
        rows = await store.fixes_after(conn, v.vehicle_id, after, horizon,
                                       self.cfg.max_fixes_per_round)
        if not rows:
            return 0
        pings = [_ping(v.ident, r) for r in rows]
        traversals = await asyncio.to_thread(_push_all, track, pings)
        await self._record(conn, state, v.vehicle_id, traversals,
                           cursor=rows[-1]["fix_time"])
        state.last_fix[v.vehicle_id] = rows[-1]["fix_time"]
        self.metrics.coverage_fixes.inc(len(rows))
        return len(rows)

    async def _flush_silent(
        self, conn: asyncpg.Connection, state: TownState, now: datetime
    ) -> None:
        # Not before the town's matcher would itself split a track at the silence.
        quiet = timedelta(seconds=max(self.cfg.flush_after_s, state.config.max_gap_s))
        for vehicle_id, last in list(state.last_fix.items()):
            if now - last < quiet:
                continue
            track = state.tracks.pop(vehicle_id, None)
            del state.last_fix[vehicle_id]
            if track is not None:
                traversals = track.flush()
                await self._record(conn, state, vehicle_id, traversals, cursor=None)

    async def _record(
        self, conn: asyncpg.Connection, state: TownState, vehicle_id: int,
        traversals: list[Traversal], cursor: datetime | None,
    ) -> None:
        events = state.book.add(traversals)
        services = [s for e in events if (s := _service(state, vehicle_id, e)) is not None]
        async with conn.transaction():
            stored = await store.record_services(conn, state.town_id, state.slug, services)
            if cursor is not None:
                await store.advance_cursor(conn, vehicle_id, state.town_id, cursor)
        self.metrics.coverage_services.inc(stored)


def _push_all(track: Track, pings: list[Ping]) -> list[Traversal]:
    return track.push_many(pings)


def _ping(ident: str, r: asyncpg.Record) -> Ping:
    return Ping(
        vehicle=ident, t=r["fix_time"].timestamp(), lon=r["lon"], lat=r["lat"],
        speed_mps=r["speed_mps"], heading_deg=r["heading_deg"], accuracy_m=r["accuracy_m"],
        plow=r["plow_down"], spreader=r["spreader_on"],
    )


def _service(state: TownState, vehicle_id: int, e: ServiceEvent) -> store.Service | None:
    segment_id = state.segment_ids.get(e.source_id)
    if segment_id is None:
        return None
    return store.Service(
        segment_id=segment_id, vehicle_id=vehicle_id, forward=e.forward,
        started_at=datetime.fromtimestamp(e.t_start, UTC),
        ended_at=datetime.fromtimestamp(e.t_end, UTC),
        fraction=min(1.0, max(0.0, e.fraction)), plowed=e.plowed, salted=e.salted,
        confidence=min(1.0, max(0.0, e.confidence)),
    )
