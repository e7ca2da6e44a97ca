"""The live channel: accepted positions (later: street status) from any ingest worker to
every API server, and from there to each browser.

Transport is PostgreSQL LISTEN/NOTIFY. It spans processes and machines with no extra
service, and a notification sent inside the ingester's write transaction is delivered only
when that transaction commits, so a browser never sees a ping the database does not have.
NOTIFY payloads are limited to 8000 bytes, so messages are split into chunks.

On the server, :class:`LiveHub` owns one listening connection and fans messages out to
subscribers. Each subscriber has its own bounded queue; a subscriber whose queue is full is
marked ``overflowed`` and its websocket is closed (the browser reconnects and gets a fresh
snapshot) so one slow client never holds up the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg
import orjson

from app.settings import DatabaseSettings

log = logging.getLogger(__name__)

CHANNEL = "plowshare_live"
_MAX_PAYLOAD = 7_800  # PostgreSQL's limit is 8000 bytes; keep a margin


def encode_messages(town: str, kind: str, items: Sequence[dict[str, Any]]) -> list[str]:
    """Split ``items`` into as few NOTIFY payloads as fit the size limit."""
    payloads: list[str] = []
    chunk: list[bytes] = []
    head = orjson.dumps({"town": town, "type": kind})[:-1] + b',"items":['
    size = len(head) + 2
    for item in items:
        encoded = orjson.dumps(item)
        if len(head) + len(encoded) + 2 > _MAX_PAYLOAD:
            log.error("live item too large for NOTIFY, not sent live: %d bytes", len(encoded))
            continue
        if chunk and size + len(encoded) + 1 > _MAX_PAYLOAD:
            payloads.append((head + b",".join(chunk) + b"]}").decode())
            chunk, size = [], len(head) + 2
        chunk.append(encoded)
        size += len(encoded) + 1
    if chunk:
        payloads.append((head + b",".join(chunk) + b"]}").decode())
    return payloads


async def notify(conn: asyncpg.Connection, payloads: Iterable[str]) -> None:
    """Queue notifications on ``conn``; sent when its transaction commits."""
    args = [(CHANNEL, p) for p in payloads]
    if args:
        await conn.executemany("SELECT pg_notify($1, $2)", args)


@dataclass(eq=False)
class Subscriber:
    town: str
    queue: asyncio.Queue[dict[str, Any]]
    overflowed: bool = False
    closed: asyncio.Event = field(default_factory=asyncio.Event)


RESYNC: dict[str, Any] = {"type": "resync"}


class LiveHub:
    """Listens on the live channel and fans out to per-town subscribers."""

    def __init__(self, settings: DatabaseSettings, queue_size: int) -> None:
        self._settings = settings
        self._queue_size = queue_size
        self._subs: dict[str, set[Subscriber]] = defaultdict(set)
        self._task: asyncio.Task[None] | None = None
        self._conn: asyncpg.Connection | None = None
        self._connected = asyncio.Event()
        self.dropped_slow_clients = 0

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="live-hub")
        # The first connection must work, or the server would start deaf.
        waiter = asyncio.create_task(self._connected.wait())
        done, _ = await asyncio.wait({waiter, self._task}, return_when=asyncio.FIRST_COMPLETED)
        if self._task in done:
            waiter.cancel()
            self._task.result()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for subs in self._subs.values():
            for sub in subs:
                sub.closed.set()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def subscribe(self, town: str) -> Subscriber:
        sub = Subscriber(town, asyncio.Queue(self._queue_size))
        self._subs[town].add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        subs = self._subs.get(sub.town)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subs[sub.town]

    def subscriber_count(self) -> int:
        return sum(len(s) for s in self._subs.values())

    def dispatch(self, message: dict[str, Any]) -> None:
        town = message.get("town")
        if not isinstance(town, str):
            return
        for sub in list(self._subs.get(town, ())):
            self._offer(sub, message)

    def _offer(self, sub: Subscriber, message: dict[str, Any]) -> None:
        if sub.overflowed:
            return
        try:
            sub.queue.put_nowait(message)
        except asyncio.QueueFull:
            sub.overflowed = True
            self.dropped_slow_clients += 1
            sub.closed.set()

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        try:
            message = orjson.loads(payload)
        except orjson.JSONDecodeError:
            log.error("undecodable live message dropped: %.200s", payload)
            return
        if isinstance(message, dict):
            self.dispatch(message)

    async def _run(self) -> None:
        delay = 0.5
        first = True
        while True:
            conn: asyncpg.Connection | None = None
            lost = asyncio.Event()
            try:
                conn = await asyncpg.connect(self._settings.url)
                conn.add_termination_listener(lambda _c, lost=lost: lost.set())
                await conn.add_listener(CHANNEL, self._on_notify)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                # Also when the server goes away between connecting and LISTEN (a restart):
                # this task must outlive any outage, or no client ever hears again.
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await conn.close(timeout=2)
                if first:
                    raise
                log.warning("live channel: cannot listen (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
                continue
            self._conn = conn
            if not first:
                # Whatever was sent while we were away is gone: every client re-reads.
                for subs in list(self._subs.values()):
                    for sub in list(subs):
                        self._offer(sub, RESYNC)
            first = False
            delay = 0.5
            self._connected.set()
            try:
                await self._watch(conn, lost)
            finally:
                self._connected.clear()
                with contextlib.suppress(Exception):
                    await asyncio.shield(conn.close(timeout=2))
            log.warning("live channel connection lost; reconnecting")

    async def _watch(self, conn: asyncpg.Connection, lost: asyncio.Event) -> None:
        # A dead TCP peer is not always noticed by a listening connection, so probe it.
        while not lost.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(lost.wait(), timeout=5.0)
            if lost.is_set():
                return
            try:
                await conn.execute("SELECT 1", timeout=5.0)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
                return


def vehicle_item(
    *,
    ident: str,
    label: str | None,
    fix_time: datetime,
    lat: float,
    lon: float,
    speed: float | None,
    heading: float | None,
    plow: bool | None,
    spreader: bool | None,
) -> dict[str, Any]:
    """One vehicle's position as every live message and snapshot carries it."""
    return {
        "id": ident,
        "label": label or ident,
        "time": fix_time.isoformat(),
        "lat": round(lat, 7),
        "lon": round(lon, 7),
        "speed": None if speed is None else round(speed, 2),
        "heading": None if heading is None else round(heading, 1),
        "plow": plow,
        "spreader": spreader,
    }
