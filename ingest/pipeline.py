"""One ordered pipeline of small named steps, as in Traccar:

    decode → [one transaction: filter → resolve → filter_motion → deduplicate → store
              → latest → live → quarantine] → (caller acknowledges the messages)

decode picks the device format by topic (ingest/decode.py). The filters are per town
(ingest/filters.py), so they run inside the transaction: ``filter`` reads the towns'
settings and applies the checks on one fix, before resolve so that e.g. a too-old fix
of an unknown vehicle is still reported too_old; ``filter_motion`` needs vehicle ids and
the vehicles' stored fixes, so it runs after resolve.

Nothing is dropped: every fix ends either in ``pings`` or in ``rejected_pings`` with a
reason, and every rejection is counted by reason. The messages of a batch are
acknowledged to the broker only after the transaction commits.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime

import asyncpg

from app import devices, live
from app.settings import IngestSettings
from ingest import filters, store
from ingest.decode import Limits, decode
from ingest.filters import FilterConfig, first_failure
from ingest.metrics import IngestMetrics
from ingest.model import Batch, Message, Position, Rejection
from ingest.resolve import Resolver

log = logging.getLogger(__name__)

# SQLSTATE classes that mean "the database is unavailable right now", not "this data is
# bad": connection exceptions, insufficient resources, operator intervention (restart),
# and transaction rollback (deadlock, serialization). Such a batch is retried as it is.
_TRANSIENT_CLASSES = ("08", "53", "57", "40")


def is_outage(exc: BaseException) -> bool:
    """The database cannot be reached or is restarting: nothing to do but wait."""
    if isinstance(exc, asyncpg.PostgresError):
        return str(exc.sqlstate or "")[:2] in ("08", "57")
    return isinstance(exc, OSError | asyncpg.InterfaceError)


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, asyncpg.PostgresError):
        return str(exc.sqlstate or "")[:2] in _TRANSIENT_CLASSES
    return isinstance(exc, OSError | asyncpg.InterfaceError | TimeoutError)


class Pipeline:
    def __init__(
        self,
        settings: IngestSettings,
        metrics: IngestMetrics,
        *,
        topic_prefix: str = "plowshare",
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.prefix = topic_prefix
        self.clock = clock
        self.filters = filters.defaults(settings)
        self.limits = Limits(settings.max_payload_bytes, settings.max_fixes_per_message)
        self.resolver = Resolver(auto_register=settings.auto_register_vehicles)
        self._partitions: set[date] = set()

    # -- steps without I/O -------------------------------------------------------------
    def decode(self, batch: Batch) -> None:
        for msg in batch.messages:
            try:
                positions, rejections = decode(msg, self.limits, self.prefix)
            except Exception:
                # A decoder bug must cost one message (quarantined, as received), never
                # the ingester: an unacknowledged message that crashes it would be
                # redelivered and crash it again, for every town.
                log.exception("decoder failed on a message from %s", msg.topic)
                positions = []
                rejections = [Rejection("decode_failed", "the decoder failed; see the "
                                        "server log", msg.topic, msg.payload, msg.received_at)]
            batch.positions.extend(positions)
            batch.rejections.extend(rejections)

    def filter(self, batch: Batch, configs: dict[str, FilterConfig] | None = None) -> None:
        """The checks on one fix, with each town's configuration (default: the
        deployment's)."""
        now = self.clock()
        kept: list[Position] = []
        for p in batch.positions:
            cfg = (configs or {}).get(p.town, self.filters)
            failure = first_failure(p, cfg, now)
            if failure is None:
                kept.append(p)
            else:
                batch.reject(p, *failure)
        batch.positions = kept

    # -- steps inside the transaction -------------------------------------------------
    async def town_configs(self, conn: asyncpg.Connection, batch: Batch
                           ) -> dict[str, FilterConfig]:
        # Read on every batch (one indexed query): a town's new settings apply at once.
        if not batch.positions:
            return {}
        towns = await filters.town_filters(conn, {p.town for p in batch.positions})
        return {slug: t.over(self.filters) for slug, t in towns.items()}

    async def filter_motion(
        self, conn: asyncpg.Connection, batch: Batch, configs: dict[str, FilterConfig]
    ) -> None:
        def config(p: Position) -> FilterConfig:
            return configs.get(p.town, self.filters)

        where = [i for i, p in enumerate(batch.positions) if config(p).checks_speed()]
        if not where:
            return
        checked = [batch.positions[i] for i in where]
        previous = await filters.stored_before(conn, checked, config)
        refused = {where[j]: failure for j, failure
                   in filters.speed_failures(checked, previous, config).items()}
        kept: list[Position] = []
        for i, p in enumerate(batch.positions):
            if i in refused:
                batch.reject(p, *refused[i])
            else:
                kept.append(p)
        batch.positions = kept

    async def resolve(self, conn: asyncpg.Connection, batch: Batch) -> None:
        known: list[Position] = []
        for p in batch.positions:
            town_id = await self.resolver.town_id(conn, p.town)
            if town_id is None:
                batch.reject(p, "unknown_town", f"no town '{p.town}'")
                continue
            p.town_id = town_id
            known.append(p)
        if self.settings.require_device_credentials and known:
            # Asked every batch, never cached: a revoked device stops counting at once.
            # Checked before vehicles are resolved, so nothing is auto-registered.
            active = await devices.active_devices(
                conn, [(p.town_id or 0, p.vehicle) for p in known])
            allowed: list[Position] = []
            for p in known:
                if (p.town_id, p.vehicle) in active:
                    allowed.append(p)
                else:
                    batch.reject(p, "unauthorized_device",
                                 f"'{p.vehicle}' has no live credentials in '{p.town}'")
            known = allowed
        kept: list[Position] = []
        for p in known:
            town_id = p.town_id or 0
            ref = await self.resolver.vehicle(conn, town_id, p.vehicle)
            if ref is None:
                batch.reject(p, "unknown_vehicle", f"no vehicle '{p.vehicle}' in '{p.town}'")
                continue
            p.vehicle_id = ref.id
            kept.append(p)
        batch.positions = kept
        # Whole-message rejections name the town too, when it exists.
        for i, r in enumerate(batch.rejections):
            if r.town_id is None and r.town is not None:
                town_id = await self.resolver.town_id(conn, r.town)
                if town_id is not None:
                    batch.rejections[i] = replace(r, town_id=town_id)

    def deduplicate(self, batch: Batch) -> None:
        seen: set[tuple[int | None, datetime]] = set()
        kept: list[Position] = []
        for p in batch.positions:
            key = (p.vehicle_id, p.fix_time)
            if key in seen:
                batch.reject(p, "duplicate", "same vehicle and fix time earlier in this batch")
            else:
                seen.add(key)
                kept.append(p)
        batch.positions = kept

    async def store(self, conn: asyncpg.Connection, batch: Batch) -> None:
        days = {p.fix_time.astimezone(UTC).date() for p in batch.positions}
        await store.ensure_partitions(conn, days, self._partitions)
        new = await store.insert_pings(conn, batch.positions)
        for p in batch.positions:
            if (p.vehicle_id, p.fix_time) in new:
                batch.stored.append(p)
            else:
                batch.reject(p, "duplicate", "this vehicle already has a fix at this time")

    async def latest_and_live(self, conn: asyncpg.Connection, batch: Batch) -> None:
        await store.mark_late_for_coverage(conn, batch.stored)
        newest: dict[int, Position] = {}
        for p in batch.stored:
            assert p.vehicle_id is not None
            current = newest.get(p.vehicle_id)
            if current is None or p.fix_time > current.fix_time:
                newest[p.vehicle_id] = p
        moved = await store.upsert_latest(conn, list(newest.values()))
        by_town: dict[str, list[dict[str, object]]] = defaultdict(list)
        for vehicle_id in sorted(moved):
            p = newest[vehicle_id]
            ref = await self.resolver.vehicle(conn, p.town_id or 0, p.vehicle)
            by_town[p.town].append(
                live.vehicle_item(
                    ident=p.vehicle, label=ref.label if ref else None, fix_time=p.fix_time,
                    lat=p.lat, lon=p.lon, speed=p.speed_mps, heading=p.heading_deg,
                    plow=p.plow_down, spreader=p.spreader_on,
                )
            )
        for town, items in by_town.items():
            await live.notify(conn, live.encode_messages(town, "positions", items))

    async def quarantine(self, conn: asyncpg.Connection, batch: Batch) -> None:
        await store.insert_rejections(conn, batch.rejections)

    # -- driver -------------------------------------------------------------------------
    async def write(self, conn: asyncpg.Connection, batch: Batch) -> None:
        async with conn.transaction():
            configs = await self.town_configs(conn, batch)
            self.filter(batch, configs)
            await self.resolve(conn, batch)
            await self.filter_motion(conn, batch, configs)
            self.deduplicate(batch)
            await self.store(conn, batch)
            await self.latest_and_live(conn, batch)
            await self.quarantine(conn, batch)

    async def process(
        self, pool: asyncpg.Pool, messages: list[Message], *, isolate_transient: bool = False
    ) -> Batch:
        """Write one batch. Raises only transient (database unavailable) errors, after
        which nothing was committed and the caller retries the same messages. With
        ``isolate_transient``, a "transient" error that is no outage (out of memory, a
        timeout, a deadlock) is treated as caused by the data: the batch is isolated."""
        batch = await self._attempt(pool, messages, isolate_transient)
        if batch is not None:
            return batch
        # Some message makes the batch fail for a reason other than an outage. Isolate it:
        # write the messages one by one and quarantine the one that still fails.
        merged = Batch(messages)
        for msg in messages:
            single = await self._attempt(pool, [msg], isolate_transient)
            if single is None:
                single = await self._quarantine_failed(pool, msg)
            merged.stored.extend(single.stored)
            merged.rejections.extend(single.rejections)
        return merged

    async def _attempt(
        self, pool: asyncpg.Pool, messages: list[Message], isolate_transient: bool = False
    ) -> Batch | None:
        batch = Batch(messages)
        self.decode(batch)
        try:
            async with pool.acquire() as conn:
                await self.write(conn, batch)
        except Exception as exc:
            self.resolver.forget()
            self._partitions.clear()
            if is_transient(exc) and not (isolate_transient and not is_outage(exc)):
                raise
            log.exception("batch of %d messages failed; isolating", len(messages))
            return None
        self._count(batch)
        return batch

    async def _quarantine_failed(self, pool: asyncpg.Pool, msg: Message) -> Batch:
        # Each fix of the message is quarantined on its own, with its town and vehicle:
        # then its seq counts as settled and the device's acknowledgements move on.
        batch = Batch([msg])
        self.decode(batch)
        for p in batch.positions:
            batch.reject(p, "store_failed", "the database refused this fix; see server log")
        batch.positions = []
        async with pool.acquire() as conn:
            for i, r in enumerate(batch.rejections):
                if r.town_id is None and r.town is not None:
                    town_id = await self.resolver.town_id(conn, r.town)
                    if town_id is not None:
                        batch.rejections[i] = replace(r, town_id=town_id)
            await store.insert_rejections(conn, batch.rejections)
        self._count(batch)
        return batch

    def _count(self, batch: Batch) -> None:
        self.metrics.batches.inc()
        self.metrics.stored.inc(len(batch.stored))
        for r in batch.rejections:
            self.metrics.rejected.labels(r.reason).inc()

