"""The public live websocket: ``/ws/public/<slug>``, what residents' pages listen to.

The dispatcher feed (``/ws/towns/<slug>``) sends every vehicle as it is, at once. This one
applies the town's public rules (app/town_rules.py): positions and street status delayed
by the town's delay, vehicles by pseudonym, idle vehicles and vehicles at a depot hidden.

Server → client (JSON text frames):
1. ``{"type": "snapshot", "town", "vehicles": [V...], "storm", "rules", "status_version",
   "as_of"}`` after connect, and again after a resync. V is as on the dispatcher feed, with
   ``id``/``label`` pseudonymous when the town says so. ``status_version`` goes into tile
   URLs (``?v=``): a tile fetched with it is at least as new as this snapshot.
2. ``{"type": "positions", "town", "vehicles": [V...], "gone": [id...]}`` — ``gone``: hide
   these now (parked, at a depot).
3. ``{"type": "segments", "town", "items": [S...]}`` — status changes of the storm shown,
   S = ``{id, storm, first_service, last_service, passes, last_plowed, last_salted}``.
4. ``{"type": "rules", "town"}`` — the storm or the town's rules changed: re-read
   ``/api/towns/<slug>/public``; a new snapshot follows.
5. ``{"type": "ping"}`` when idle.
A client that falls behind is closed with 1013 and should reconnect.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
from fastapi import APIRouter, WebSocket

from app.api import wsrun
from app.deps import PoolDep, SettingsDep
from app.errors import NotFound
from app.live import RESYNC
from app.public_deps import FeedsDep, RulesDep
from app.public_feed import RULES_CHANGED, PublicSubscriber
from app.public_status import status_version
from app.public_vehicles import public_snapshot

router = APIRouter()

@router.websocket("/ws/public/{slug}")
async def public_live(websocket: WebSocket, slug: str, pool: PoolDep, feeds: FeedsDep,
                      rules_cache: RulesDep, settings: SettingsDep) -> None:
    try:
        async with pool.acquire() as conn:
            await rules_cache.get(conn, slug)
    except NotFound:
        await websocket.close(code=1008, reason="no such town")
        return
    await websocket.accept()
    sub = await feeds.subscribe(slug)
    try:
        await wsrun.serve(
            websocket, sub,
            snapshot=lambda: _snapshot(websocket, pool, rules_cache, slug),
            forward=lambda: _forward(websocket, sub, pool, rules_cache, slug,
                                     settings.server.ws_keepalive_s))
    finally:
        feeds.unsubscribe(sub)


async def _snapshot(websocket: WebSocket, pool: PoolDep, rules_cache: RulesDep,
                    slug: str) -> None:
    async with pool.acquire() as conn:
        rules_cache.forget(slug)  # a snapshot is the moment to be exact
        rules = await rules_cache.get(conn, slug)
        version = await status_version(conn, rules)
        vehicles = await public_snapshot(conn, rules)
    as_of = datetime.now(UTC) - timedelta(seconds=rules.delay)
    await websocket.send_text(orjson.dumps({
        "type": "snapshot", "town": slug, "vehicles": vehicles, "storm": rules.storm,
        "rules": rules.config(), "status_version": version, "as_of": as_of.isoformat(),
    }).decode())


async def _forward(websocket: WebSocket, sub: PublicSubscriber, pool: PoolDep,
                   rules_cache: RulesDep, slug: str, keepalive: float) -> None:
    while True:
        message = await wsrun.next_message(websocket, sub.queue, keepalive)
        if message is RESYNC:
            await _snapshot(websocket, pool, rules_cache, slug)
            continue
        if message is RULES_CHANGED:
            await websocket.send_text(orjson.dumps({"type": "rules", "town": slug}).decode())
            await _snapshot(websocket, pool, rules_cache, slug)
            continue
        await websocket.send_text(orjson.dumps(message).decode())

