"""The ingest worker: MQTT in, batches through the pipeline, acknowledgements out.

Several workers may run at once (set PLOWSHARE_MQTT_SHARED_GROUP and a distinct
PLOWSHARE_MQTT_CLIENT_ID each); nothing here is global.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os

import asyncpg
from prometheus_client import start_http_server

from app.db import create_pool
from app.migrate import MigrationError
from app.settings import Settings
from ingest import acks
from ingest.coverage_worker import CoverageWorker
from ingest.metrics import IngestMetrics
from ingest.model import Batch
from ingest.mqtt import Delivery, MqttSource
from ingest.pipeline import Pipeline, is_outage, is_transient
from ingest.retention import retention_loop

log = logging.getLogger(__name__)


class Ingester:
    def __init__(self, settings: Settings, metrics: IngestMetrics | None = None) -> None:
        self.settings = settings
        self.metrics = metrics or IngestMetrics()
        self.pipeline = Pipeline(settings.ingest, self.metrics,
                                 topic_prefix=settings.mqtt.topic_prefix)
        self._stop = asyncio.Event()
        self._batches = 0
        self._pool: asyncpg.Pool | None = None
        self._coverage: CoverageWorker | None = None
        self._coverage_task: asyncio.Task[None] | None = None

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        pool = await _connect_with_retry(self.settings)
        if not await pool.fetchval("SELECT to_regclass('pings') IS NOT NULL"):
            await pool.close()
            raise MigrationError("database is not migrated: run `plowshare migrate` first")
        if self.settings.ingest.metrics_port is not None:
            start_http_server(self.settings.ingest.metrics_port,
                              registry=self.metrics.registry)
        source = MqttSource(self.settings.mqtt, self.settings.ingest.queue_size,
                            asyncio.get_running_loop())
        source.start()
        log.info("ingesting from mqtt://%s:%d", self.settings.mqtt.host,
                 self.settings.mqtt.port)
        self._pool = pool
        coverage_task = self._restart_coverage() if self.settings.coverage.enabled else None
        retention: asyncio.Task[None] | None = None
        if self.settings.ingest.retention_days is not None:
            retention = asyncio.create_task(
                retention_loop(pool, self.settings.ingest.retention_days), name="retention")
        try:
            await self._loop(pool, source, coverage_task)
        finally:
            source.stop()
            if retention is not None:
                retention.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await retention
            if self._coverage is not None and self._coverage_task is not None:
                self._coverage.stop()
                with contextlib.suppress(Exception):
                    await self._coverage_task
            await pool.close()

    def _restart_coverage(self) -> asyncio.Task[None]:
        assert self._pool is not None
        self._coverage = CoverageWorker(self.settings, self._pool, self.metrics)
        self._coverage_task = asyncio.create_task(self._coverage.run(), name="coverage")
        return self._coverage_task

    async def _loop(
        self, pool: asyncpg.Pool, source: MqttSource, coverage: asyncio.Task[None] | None
    ) -> None:
        cfg = self.settings.ingest
        stop_wait = asyncio.create_task(self._stop.wait())
        collect: asyncio.Task[list[Delivery]] | None = None
        try:
            while not self._stop.is_set():
                if collect is None:
                    collect = asyncio.create_task(source.next_batch(cfg.batch_size,
                                                                    cfg.flush_interval_s))
                watch = {collect, stop_wait} | ({coverage} if coverage is not None else set())
                await asyncio.wait(watch, return_when=asyncio.FIRST_COMPLETED)
                if coverage is not None and coverage.done():
                    # The worker handles its own faults; if it ends anyway, storing fixes
                    # must go on: log it, count it, start matching again. The batch being
                    # collected is kept (cancelling it would lose what it had dequeued).
                    exc = None if coverage.cancelled() else coverage.exception()
                    log.error("coverage worker ended (%r); restarting it", exc)
                    self.metrics.coverage_errors.inc()
                    coverage = self._restart_coverage()
                if not collect.done():
                    continue
                deliveries = collect.result()
                collect = None
                if deliveries:
                    await self._write(pool, source, deliveries)
            if collect is not None:
                # Stopping: what was dequeued but not written is not acknowledged either,
                # so the broker delivers it again to the next session.
                collect.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await collect
        finally:
            stop_wait.cancel()

    async def _write(
        self, pool: asyncpg.Pool, source: MqttSource, deliveries: list[Delivery]
    ) -> None:
        self.metrics.messages.inc(len(deliveries))
        self.metrics.queue_depth.set(source.queue.qsize())
        messages = [d.message for d in deliveries]
        delay = 0.2
        self._batches += 1
        self._fault("exit_before_commit")
        suspect = 0  # failures of this batch that were not outages
        while True:
            isolate = suspect >= self.settings.ingest.isolate_after_retries
            try:
                with self.metrics.batch_seconds.time():
                    batch = await self.pipeline.process(pool, messages,
                                                        isolate_transient=isolate)
                break
            except Exception as exc:
                if not is_transient(exc):
                    raise
                # The database is away. Nothing was committed or acknowledged; the broker
                # still holds these messages for us. Keep trying the same batch -- but an
                # error that keeps coming back while the database is up (out of memory, a
                # timeout) may be this batch's doing: after a few, isolate its messages.
                if not is_outage(exc):
                    suspect += 1
                self.metrics.retries.inc()
                log.warning("database unavailable (%s); retrying batch in %.1fs",
                            type(exc).__name__, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
        self._fault("exit_after_commit")
        source.ack(deliveries)
        await self._acknowledge_end_to_end(pool, source, batch)

    async def _acknowledge_end_to_end(
        self, pool: asyncpg.Pool, source: MqttSource, batch: Batch
    ) -> None:
        prefix = self.settings.mqtt.topic_prefix
        try:
            async with pool.acquire() as conn:
                for town, vehicle in sorted(acks.vehicles_to_ack(batch)):
                    ack = await acks.advance(conn, town, vehicle)
                    if ack is not None:
                        source.publish(f"{prefix}/{town}/{vehicle}/ack", ack.payload(),
                                       retain=True)
        except Exception as exc:
            # Best effort: the fixes are committed and the broker acknowledged. A device
            # re-sends what it has not seen acknowledged, and that batch acknowledges it;
            # a failure here must never stop ingestion.
            self.metrics.ack_failures.inc()
            if is_transient(exc):
                log.warning("end-to-end acks not sent: %s", type(exc).__name__)
            else:
                log.exception("end-to-end acks failed")

    def _fault(self, point: str) -> None:
        """Test-only fault injection (PLOWSHARE_INGEST_FAULT_INJECTION=<point>:<batch>):
        exit abruptly at a chosen point of a chosen batch, as a crash would."""
        spec = self.settings.ingest.fault_injection
        if spec and spec == f"{point}:{self._batches}":
            log.error("fault injection: exiting at %s of batch %d", point, self._batches)
            os._exit(70)


async def _connect_with_retry(settings: Settings) -> asyncpg.Pool:
    delay = 0.5
    for attempt in range(1, 9):
        try:
            return await create_pool(settings.database)
        except (OSError, asyncpg.CannotConnectNowError) as exc:
            log.warning("cannot reach database (attempt %d): %s", attempt, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)
    return await create_pool(settings.database)
