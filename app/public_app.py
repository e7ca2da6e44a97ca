"""Everything of the residents' side, plugged into the app by ``create_app``: routers,
pages, shared state, and the HTTP answers for its own errors."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from app import public_deps
from app.api import dispatch, matching, opendata, public, public_pages, public_ws, tiles
from app.public_settings import PublicSettings
from app.reports import RateLimited
from app.settings import Settings


def install(app: FastAPI, settings: Settings, public_settings: PublicSettings | None = None
            ) -> None:
    public_deps.install(app, public_settings)
    for module in (public, tiles, opendata, dispatch, matching, public_ws):
        app.include_router(module.router)
    public_pages.mount(app, settings.server)

    # More specific than app.errors' PlowshareError handler, so Starlette picks these.
    async def rate_limited(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RateLimited)
        return JSONResponse({"detail": str(exc)}, status_code=429,
                            headers={"Retry-After": str(exc.retry_after_s)})

    async def unauthorized(_request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=401,
                            headers={"WWW-Authenticate": "Bearer"})

    app.add_exception_handler(RateLimited, rate_limited)
    async def disabled(_request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=403)

    app.add_exception_handler(public_deps.Unauthorized, unauthorized)
    app.add_exception_handler(public_deps.DispatchDisabled, disabled)
