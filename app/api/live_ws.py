"""The dispatcher's live websocket: ``/ws/towns/<slug>?token=<dispatch token>``.

Contract (JSON text frames, server → client):
1. ``{"type": "snapshot", "town": slug, "vehicles": [V, ...]}`` once, right after connect;
2. ``{"type": "positions", "town": slug, "vehicles": [V, ...]}`` for each committed batch;
3. ``{"type": "ping"}`` when nothing else was sent for a while (keeps proxies from closing
   an idle socket).
V is :func:`app.live.vehicle_item`. The subscription is made *before* the snapshot is read,
so nothing falls in between; an update may therefore repeat or predate the snapshot and
clients keep, per vehicle, the fix with the newest ``time``. A client that cannot keep up
is closed with code 1013 and should reconnect (it gets a new snapshot).
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, WebSocket

from app import queries
from app.api import wsrun
from app.deps import HubDep, PoolDep, SettingsDep
from app.errors import NotFound
from app.live import RESYNC, Subscriber
from app.public_deps import PublicDep, dispatch_token_ok

router = APIRouter()

@router.websocket("/ws/towns/{slug}")
async def town_live(
    websocket: WebSocket, slug: str, pool: PoolDep, hub: HubDep, settings: SettingsDep,
    public: PublicDep,
) -> None:
    # The dispatcher's feed: undelayed, real vehicle names. Residents use /ws/public/.
    if not dispatch_token_ok(public, websocket.query_params.get("token")):
        await websocket.close(code=1008, reason="dispatch token required")
        return
    try:
        async with pool.acquire() as conn:
            town = await queries.town_id(conn, slug)
    except NotFound:
        await websocket.close(code=1008, reason="no such town")
        return
    await websocket.accept()
    sub = hub.subscribe(slug)
    try:
        await wsrun.serve(
            websocket, sub,
            snapshot=lambda: _send_snapshot(websocket, pool, slug, town),
            forward=lambda: _forward(websocket, sub, pool, slug, town,
                                     settings.server.ws_keepalive_s))
    finally:
        hub.unsubscribe(sub)


async def _send_snapshot(websocket: WebSocket, pool: Any, slug: str, town: int) -> None:
    async with pool.acquire() as conn:
        vehicles = await queries.vehicles(conn, town)
    await websocket.send_text(
        orjson.dumps({"type": "snapshot", "town": slug, "vehicles": vehicles}).decode()
    )


async def _forward(
    websocket: WebSocket, sub: Subscriber, pool: Any, slug: str, town: int, keepalive: float
) -> None:
    while True:
        message = await wsrun.next_message(websocket, sub.queue, keepalive)
        if message is RESYNC:
            await _send_snapshot(websocket, pool, slug, town)
            continue
        key = "vehicles" if message.get("type") == "positions" else "items"
        out = {"type": message.get("type"), "town": slug, key: message.get("items", [])}
        await websocket.send_text(orjson.dumps(out).decode())

