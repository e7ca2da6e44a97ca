"""Every error the API raises on purpose, and the one table that maps them to HTTP."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

log = logging.getLogger(__name__)


class PlowshareError(Exception):
    """Base class; the message is safe to show to a client."""


class NotFound(PlowshareError):
    pass


class InvalidInput(PlowshareError):
    pass


class Unavailable(PlowshareError):
    pass


STATUS: dict[type[PlowshareError], int] = {
    NotFound: 404,
    InvalidInput: 422,
    Unavailable: 503,
}


def install(app: FastAPI) -> None:
    async def known(_request: Request, exc: Exception) -> JSONResponse:
        status = next((s for cls, s in STATUS.items() if isinstance(exc, cls)), 500)
        return JSONResponse({"detail": str(exc)}, status_code=status)

    async def unknown(request: Request, exc: Exception) -> JSONResponse:
        # Internals go to the log, never to the client.
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse({"detail": "internal error"}, status_code=500)

    app.add_exception_handler(PlowshareError, known)
    app.add_exception_handler(Exception, unknown)
