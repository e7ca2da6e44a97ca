"""OsmAnd / Traccar Client over HTTP: ``GET|POST /api/devices/osmand``.

One fix per request, as query parameters, a form body, or (newer Traccar Client) a JSON
body. The device proves who it is with its token, in ``Authorization: Bearer <token>`` or,
because these apps can only be given a URL, as the query parameter ``token``. The token
decides the town and vehicle; an ``id`` / ``deviceid`` / ``device_id`` the app sends must
be that vehicle's id.

The request goes through the same ingest pipeline as MQTT messages, as a message on topic
``osmand/<town>/<vehicle>`` whose payload is what the device sent less the token: the
query string, the query string and form body joined with ``&``, or the JSON body. The
pipeline commits before it returns, so a 200 means stored (at least once: a retried request
is a duplicate and also gets 200). Answers: 200 stored, 400 refused fix (the reasons are
given, and the fix is kept in quarantine), 401 no or unknown token, 403 revoked token or
a foreign ``id``, 413 too large, 503 database unavailable (retry).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, unquote_plus

import orjson
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse

from app import errors
from app.db import create_pool
from app.deps import PoolDep
from app.devices import DeviceRef, TokenVerifier
from app.security import LimitRequestSize
from app.settings import Settings
from ingest.metrics import IngestMetrics
from ingest.model import Batch, Message
from ingest.pipeline import Pipeline, is_transient

TOPIC_FAMILY = "osmand"
_ID_KEYS = ("id", "deviceid", "device_id")

router = APIRouter(prefix="/api/devices", tags=["devices"])


@dataclass
class DeviceIngest:
    pipeline: Pipeline
    verifier: TokenVerifier
    max_bytes: int
    # The pipeline keeps per-instance caches (resolved ids, known partitions) that assume
    # one batch at a time; requests take turns. One transaction per fix is far above the
    # rate of phones and trackers.
    lock: asyncio.Lock


def install(app: FastAPI, settings: Settings) -> None:
    """Add the device endpoint to an app whose lifespan sets ``app.state.pool``."""
    app.state.device_ingest = DeviceIngest(
        pipeline=Pipeline(settings.ingest, IngestMetrics(),
                          topic_prefix=settings.mqtt.topic_prefix),
        verifier=TokenVerifier(),
        max_bytes=min(settings.ingest.max_payload_bytes, settings.server.max_request_bytes),
        lock=asyncio.Lock(),
    )
    app.include_router(router)


def create_device_app(settings: Settings) -> FastAPI:
    """An app with only the device endpoint (tests, or a separate ingest-only server)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.pool = await create_pool(settings.database)
        try:
            yield
        finally:
            await app.state.pool.close()

    app = FastAPI(title="plowshare devices", lifespan=lifespan)
    app.state.settings = settings
    errors.install(app)
    install(app, settings)
    app.add_middleware(LimitRequestSize, max_bytes=settings.server.max_request_bytes)
    return app


def _answer(status: int, detail: str, **extra: Any) -> JSONResponse:
    headers = None
    if status == 401:
        headers = {"WWW-Authenticate": 'Bearer realm="plowshare devices"'}
    return JSONResponse({"detail": detail, **extra}, status_code=status, headers=headers)


def _token(request: Request) -> str | JSONResponse | None:
    """The presented token, None when there is none, or the answer refusing the request."""
    header = request.headers.get("authorization")
    in_header = None
    if header is not None:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            return _answer(401, "use 'Authorization: Bearer <device token>'")
        in_header = value.strip()
    in_query = request.query_params.getlist("token")
    if len(in_query) > 1:
        return _answer(401, "more than one token")
    if in_header and in_query and in_query[0] != in_header:
        return _answer(401, "two different tokens")
    return in_header or (in_query[0] if in_query else None)


def strip_token(encoded: bytes) -> bytes:
    """Drop every ``token=…`` pair from a URL-encoded string, keeping the rest byte for byte
    (the secret must not end up in pings.raw or in quarantine)."""
    kept = [pair for pair in encoded.split(b"&")
            if pair and unquote_plus(pair.split(b"=", 1)[0].decode("latin-1")) != "token"]
    return b"&".join(kept)


def _is_json(content_type: str | None, body: bytes) -> bool:
    # The rule the OsmAnd decoder applies too (ingest/formats/osmand.py).
    ctype = (content_type or "").split(";")[0].strip().lower()
    return ctype == "application/json" or ctype.endswith("+json") or body[:1] == b"{"


def _claimed_ids(payload: bytes, is_json: bool) -> set[str]:
    if is_json:
        try:
            doc = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return set()  # the pipeline quarantines it as bad JSON
        if not isinstance(doc, dict):
            return set()
        return {str(doc[k]) for k in _ID_KEYS if isinstance(doc.get(k), str | int)}
    pairs = parse_qsl(payload.decode("utf-8", "replace"), keep_blank_values=True)
    return {v for k, v in pairs if k in _ID_KEYS}


async def _body(request: Request, limit: int) -> bytes | None:
    """The body, or None as soon as it passes ``limit`` bytes."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


# One handler, registered once per method: a single route with two methods would give
# both the same OpenAPI operation id.
@router.get("/osmand", operation_id="osmand_fix_get")
@router.post("/osmand", operation_id="osmand_fix_post")
async def osmand(request: Request, pool: PoolDep) -> JSONResponse:
    """One fix from OsmAnd or Traccar Client (see the module's documentation)."""
    ingest: DeviceIngest = request.app.state.device_ingest
    token = _token(request)
    if isinstance(token, JSONResponse):
        return token
    if token is None:
        return _answer(401, "device token required (Authorization: Bearer, or ?token=)")
    async with pool.acquire() as conn:
        device = await ingest.verifier.verify(conn, token)
    if device is None:
        return _answer(401, "unknown device token")
    if device.revoked:
        return _answer(403, "this device token was revoked")

    query = strip_token(request.scope.get("query_string", b""))
    body = await _body(request, ingest.max_bytes)
    if body is None or len(query) > ingest.max_bytes:
        return _answer(413, f"a fix is at most {ingest.max_bytes} bytes")
    content_type = request.headers.get("content-type")
    is_json = bool(body) and _is_json(content_type, body)
    payload = body if is_json else b"&".join(p for p in (query, strip_token(body)) if p)
    if len(payload) > ingest.max_bytes:
        return _answer(413, f"a fix is at most {ingest.max_bytes} bytes")
    claimed = _claimed_ids(payload, is_json) | (_claimed_ids(query, False) if is_json
                                                 else set())
    if claimed - {device.ident}:
        # Refused, and kept: the pipeline quarantines it as vehicle_mismatch.
        await _write(ingest, pool, device, payload, content_type)
        return _answer(403, f"the id in the request is not this token's vehicle "
                            f"({device.ident!r})")

    batch = await _write(ingest, pool, device, payload, content_type)
    return _result(batch)


# The decoder reads Message.content_type once ingest/model.py has it; until then the
# JSON body is recognised by its leading '{' alone.
_HAS_CONTENT_TYPE = "content_type" in getattr(Message, "__dataclass_fields__", {})


async def _write(ingest: DeviceIngest, pool: Any, device: DeviceRef, payload: bytes,
                 content_type: str | None) -> Batch:
    extra: dict[str, Any] = {"content_type": content_type} if _HAS_CONTENT_TYPE else {}
    message = Message(topic=f"{TOPIC_FAMILY}/{device.town}/{device.ident}", payload=payload,
                      received_at=datetime.now(UTC), **extra)
    try:
        async with ingest.lock:
            return await ingest.pipeline.process(pool, [message])
    except Exception as exc:
        if is_transient(exc):
            raise errors.Unavailable("database unavailable; send the fix again") from exc
        raise


def _result(batch: Batch) -> JSONResponse:
    reasons = sorted({r.reason for r in batch.rejections})
    if batch.stored or reasons == ["duplicate"]:
        # A duplicate is a retry of a fix already stored: the device may forget it.
        return JSONResponse({"stored": len(batch.stored),
                             "duplicates": sum(r.reason == "duplicate"
                                               for r in batch.rejections)})
    if "unauthorized_device" in reasons:
        return _answer(403, "this device is not active", reasons=reasons)
    details = [r.detail for r in batch.rejections]
    return _answer(400, "fix refused: " + "; ".join(details), reasons=reasons)
