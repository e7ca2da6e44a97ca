"""The API server: ``create_app(settings)``; run with ``plowshare serve`` (uvicorn
``--factory app.main:app_from_env``)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI
from fastapi.responses import PlainTextResponse
from prometheus_client import CollectorRegistry, Gauge, generate_latest
from prometheus_client.core import CounterMetricFamily

from app import errors, logredact, public_app
from app.api import device_http, live_ws, pages, towns
from app.db import create_pool
from app.deps import HubDep, PoolDep
from app.live import LiveHub
from app.security import LimitRequestSize, SecurityHeaders
from app.settings import Settings, load_settings

log = logging.getLogger(__name__)


def create_app(settings: Settings) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        logredact.install()  # after uvicorn has set up its loggers
        pool = await create_pool(settings.database)
        hub = LiveHub(settings.database, settings.server.ws_queue_size)
        try:
            await hub.start()
        except BaseException:
            await pool.close()
            raise
        app.state.pool, app.state.hub = pool, hub
        try:
            yield
        finally:
            # Reverse order of creation: stop fan-out first, then the pool.
            await hub.stop()
            await pool.close()

    app = FastAPI(
        title="plowshare",
        version="0.1.0",
        summary="Real-time snow-plow tracking and street coverage, shared by many towns.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    errors.install(app)
    app.include_router(towns.router)
    app.include_router(live_ws.router)
    public_app.install(app, settings)  # residents' map, tiles, search, reports, dispatch
    device_http.install(app, settings)  # OsmAnd / Traccar Client devices over HTTP
    _ops_routes(app)
    pages.mount(app, settings.server)
    app.add_middleware(LimitRequestSize, max_bytes=settings.server.max_request_bytes)
    app.add_middleware(SecurityHeaders)
    return app


def _ops_routes(app: FastAPI) -> None:
    registry = CollectorRegistry()
    clients = Gauge("plowshare_ws_clients", "open live websockets", registry=registry)

    class _Dropped:
        def collect(self):  # type: ignore[no-untyped-def]
            hub: LiveHub | None = getattr(app.state, "hub", None)
            family = CounterMetricFamily("plowshare_ws_slow_clients_dropped",
                                         "websockets closed for falling behind")
            family.add_metric([], hub.dropped_slow_clients if hub else 0)
            yield family

    registry.register(_Dropped())

    @app.get("/healthz", tags=["ops"])
    async def healthz(pool: PoolDep, hub: HubDep) -> dict[str, object]:
        """Ready when the database answers and the live channel is listening."""
        await pool.fetchval("SELECT 1")
        if not hub.connected:
            raise errors.Unavailable("live channel is reconnecting")
        return {"status": "ok"}

    @app.get("/metrics", tags=["ops"], response_class=PlainTextResponse)
    async def metrics(hub: HubDep) -> PlainTextResponse:
        clients.set(hub.subscriber_count())
        return PlainTextResponse(generate_latest(registry).decode())


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory``: settings are read when the server starts."""
    return create_app(load_settings())
