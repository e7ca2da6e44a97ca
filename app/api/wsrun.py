"""What every live websocket does once it has a subscription: read the client only to
notice it leave, send a snapshot, forward updates with keep-alive pings, and close with
1013 ("try again later") when the subscription was cut off (too slow, or the server's
live channel stopped) so the browser reconnects to a fresh snapshot."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from fastapi import WebSocket, WebSocketDisconnect

TRY_AGAIN_LATER = 1013
PING = '{"type":"ping"}'


class Subscription(Protocol):
    queue: asyncio.Queue[Any]
    overflowed: bool
    closed: asyncio.Event


async def serve(
    websocket: WebSocket,
    sub: Subscription,
    snapshot: Callable[[], Coroutine[Any, Any, None]],
    forward: Callable[[], Coroutine[Any, Any, None]],
) -> None:
    reader = asyncio.create_task(drain(websocket))
    cut_off = asyncio.create_task(sub.closed.wait())
    try:
        await snapshot()
        writer = asyncio.create_task(forward())
        done, _ = await asyncio.wait({reader, writer, cut_off},
                                     return_when=asyncio.FIRST_COMPLETED)
        writer.cancel()
        with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, RuntimeError):
            await writer
        if sub.overflowed or (sub.closed.is_set() and reader not in done):
            await websocket.close(code=TRY_AGAIN_LATER, reason="reconnect")
        elif reader not in done:
            await websocket.close(code=1001)
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        reader.cancel()
        cut_off.cancel()


async def next_message(websocket: WebSocket, queue: asyncio.Queue[Any],
                       keepalive_s: float) -> Any:
    """The next queued message; while there is none, a ping every ``keepalive_s`` keeps
    proxies from closing an idle socket."""
    while True:
        try:
            return await asyncio.wait_for(queue.get(), timeout=keepalive_s)
        except TimeoutError:
            await websocket.send_text(PING)


async def drain(websocket: WebSocket) -> None:
    """Read (and ignore) what the client sends, to notice when it goes away."""
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
