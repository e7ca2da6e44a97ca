"""The public live feed of a town: one per town per server, shared by all its public
websockets, so the rules are applied once per batch rather than once per resident.

A town feed holds one subscription to the live hub. Positions and street status pass
through the town's rules (app/public_vehicles.py) and, when the town delays its public
view, wait in a queue ordered by when they may be shown (fix time or service time plus
the delay). Each public websocket has its own bounded queue; one that falls behind is
closed and reconnects, as on the dispatcher feed.

Messages to subscribers: ``{"type": "positions", "vehicles": [...], "gone": [ids]}``,
``{"type": "segments", "items": [...]}``, ``{"type": "rules"}`` (storm or rules changed:
re-read them) and :data:`app.live.RESYNC` (send a fresh snapshot).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from app import public_vehicles as pv
from app.live import RESYNC, LiveHub, Subscriber
from app.public_status import RulesCache
from app.town_rules import TownRules

log = logging.getLogger(__name__)

RULES_CHANGED: dict[str, Any] = {"type": "rules"}


class PublicSubscriber(Subscriber):
    """A public client: the same bounded queue as a hub subscriber, but fed only by its
    town's public feed (delayed, privacy rules applied). A type of its own so that one
    is never handed to the hub, whose messages are undelayed."""


class PublicFeeds:
    """Creates a town's feed with its first public client and ends it with the last."""

    def __init__(self, pool: asyncpg.Pool, hub: LiveHub, rules: RulesCache,
                 queue_size: int, refresh_s: float) -> None:
        self.pool, self.hub, self.rules = pool, hub, rules
        self.queue_size, self.refresh_s = queue_size, refresh_s
        self._feeds: dict[str, TownFeed] = {}

    async def subscribe(self, slug: str) -> PublicSubscriber:
        while True:
            sub = PublicSubscriber(slug, asyncio.Queue(self.queue_size))
            feed = self._feeds.get(slug)
            if feed is None or feed.ended:
                feed = TownFeed(self, slug)
                self._feeds[slug] = feed
                # Subscribed before the start's awaits: a client that joins and leaves
                # meanwhile must not leave the feed empty and stopped under us.
                feed.subscribers.add(sub)
                await feed.start()
            else:
                feed.subscribers.add(sub)
            if not feed.ended:
                return sub
            feed.subscribers.discard(sub)  # it ended while starting: take a new one

    def unsubscribe(self, sub: PublicSubscriber) -> None:
        feed = self._feeds.get(sub.town)
        if feed is not None:
            feed.subscribers.discard(sub)
            if not feed.subscribers:
                feed.stop()

    def _ended(self, feed: TownFeed) -> None:
        if self._feeds.get(feed.slug) is feed:
            del self._feeds[feed.slug]

    async def close(self) -> None:
        for feed in list(self._feeds.values()):
            feed.stop()
            await feed.wait()


class TownFeed:
    def __init__(self, feeds: PublicFeeds, slug: str) -> None:
        self.feeds, self.slug = feeds, slug
        self.subscribers: set[PublicSubscriber] = set()
        self.ended = False
        self._hub_sub: Subscriber | None = None
        self._task: asyncio.Task[None] | None = None
        self._rules: TownRules | None = None
        self._loaded_at = 0.0
        self._pending: list[tuple[datetime, int, str, dict[str, Any], bool]] = []
        self._seq = itertools.count()

    async def start(self) -> None:
        # Subscribe before reading anything, so nothing falls in between.
        self._hub_sub = self.feeds.hub.subscribe(self.slug)
        try:
            await self._load_rules(force=True)
            await self._catch_up()
        except BaseException:
            self._finish()
            raise
        if self.ended:  # stopped while starting: stop() already finished it
            return
        self._task = asyncio.create_task(self._run(), name=f"public-feed-{self.slug}")

    def stop(self) -> None:
        self.ended = True  # a new subscriber now gets a new feed, not this dying one
        if self._task is not None:
            self._task.cancel()
        else:
            self._finish()

    async def wait(self) -> None:
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    @property
    def rules(self) -> TownRules:
        assert self._rules is not None
        return self._rules

    async def _run(self) -> None:
        assert self._hub_sub is not None
        hub_sub = self._hub_sub
        closed = asyncio.create_task(hub_sub.closed.wait())
        get: asyncio.Task[dict[str, Any]] | None = None
        try:
            while not hub_sub.closed.is_set():
                get = asyncio.create_task(hub_sub.queue.get())
                done, _ = await asyncio.wait({get, closed}, timeout=self._wait_s(),
                                             return_when=asyncio.FIRST_COMPLETED)
                if get in done:
                    await self._intake(get.result())
                    while not hub_sub.queue.empty():
                        await self._intake(hub_sub.queue.get_nowait())
                else:
                    get.cancel()  # an item already taken stays in the queue
                    with contextlib.suppress(asyncio.CancelledError):
                        await get
                if time.monotonic() - self._loaded_at > self.feeds.refresh_s:
                    await self._reload()
                self._release()
        except asyncio.CancelledError:
            pass
        except Exception:
            # Subscribers reconnect and get a new feed; better than a silent, stuck one.
            log.exception("public feed of %s failed", self.slug)
        finally:
            # Cancelled mid-wait (the last subscriber left): no helper task may outlive us.
            for helper in (closed, get):
                if helper is not None and not helper.done():
                    helper.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await helper
            self._finish()

    def _finish(self) -> None:
        self.ended = True
        if self._hub_sub is not None:
            self.feeds.hub.unsubscribe(self._hub_sub)
        for sub in self.subscribers:
            sub.closed.set()
        self.feeds._ended(self)

    def _wait_s(self) -> float:
        until_refresh = self.feeds.refresh_s - (time.monotonic() - self._loaded_at)
        if not self._pending:
            return max(0.05, until_refresh)
        due = (self._pending[0][0] - datetime.now(UTC)).total_seconds()
        return max(0.0, min(due, until_refresh))

    async def _load_rules(self, force: bool = False) -> bool:
        """Re-read the rules; True when what the public sees has changed with them."""
        async with self.feeds.pool.acquire() as conn:
            if force:
                self.feeds.rules.forget(self.slug)
            fresh = await self.feeds.rules.get(conn, self.slug)
        self._loaded_at = time.monotonic()
        old, self._rules = self._rules, fresh
        return old is not None and old != fresh

    async def _reload(self) -> None:
        if await self._load_rules(force=True):
            # New storm or new rules: start the public view over from the database.
            self._pending.clear()
            await self._catch_up()
            self._broadcast(RULES_CHANGED)

    async def _catch_up(self) -> None:
        """With a delay, queue what the public will see in the next ``delay`` seconds."""
        rules = self.rules
        if not rules.delay:
            return
        now = datetime.now(UTC)
        async with self.feeds.pool.acquire() as conn:
            for item, depot in await pv.upcoming(conn, rules, now):
                self._queue(item["time"], "v", item, depot)
            for status in await pv.upcoming_status(conn, rules, now):
                self._queue(status["last_service"], "s", status, False)

    async def _intake(self, message: dict[str, Any]) -> None:
        if message is RESYNC:
            # The hub lost its connection: whatever was sent meanwhile is gone.
            self._pending.clear()
            await self._catch_up()
            self._broadcast(RESYNC)
            return
        kind, items = message.get("type"), message.get("items") or []
        if kind == "positions":
            depots = [False] * len(items)
            if self.rules.has_depots:
                async with self.feeds.pool.acquire() as conn:
                    depots = await pv.at_depot(conn, self.rules, items)
            for item, depot in zip(items, depots, strict=True):
                self._queue(item["time"], "v", item, depot)
        elif kind == "segments":
            for item in items:
                if (item.get("storm") or 0) == self.rules.storm_key:
                    self._queue(item["last_service"], "s", item, False)
        elif kind in ("storm", "rules"):
            await self._reload()

    def _queue(self, at: str, kind: str, item: dict[str, Any], depot: bool) -> None:
        release = datetime.fromisoformat(at) + timedelta(seconds=self.rules.delay)
        if not self.rules.delay:
            release = datetime.min.replace(tzinfo=UTC)  # no delay: as it comes
        heapq.heappush(self._pending, (release, next(self._seq), kind, item, depot))

    def _release(self) -> None:
        now = datetime.now(UTC)
        public_now = now - timedelta(seconds=self.rules.delay)
        vehicles: dict[str, dict[str, Any]] = {}
        gone: set[str] = set()
        segments: dict[int, dict[str, Any]] = {}
        while self._pending and self._pending[0][0] <= now:
            _, _, kind, item, depot = heapq.heappop(self._pending)
            if kind == "s":
                segments[item["id"]] = item
                continue
            shown = pv.public_vehicle(self.rules, item, depot, public_now)
            public_id = self.rules.public_id(item["id"])
            if shown is None:
                vehicles.pop(public_id, None)
                gone.add(public_id)
            else:
                vehicles[public_id] = shown
                gone.discard(public_id)
        if vehicles or gone:
            self._broadcast({"type": "positions", "town": self.slug,
                             "vehicles": list(vehicles.values()), "gone": sorted(gone)})
        if segments:
            self._broadcast({"type": "segments", "town": self.slug,
                             "items": list(segments.values())})

    def _broadcast(self, message: dict[str, Any]) -> None:
        for sub in list(self.subscribers):
            if sub.overflowed:
                continue
            try:
                sub.queue.put_nowait(message)
            except asyncio.QueueFull:
                sub.overflowed = True
                sub.closed.set()
