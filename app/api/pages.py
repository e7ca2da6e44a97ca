"""The map pages and their assets. MapLibre comes from npm (static/node_modules), installed
by the set-up; it is served from here so the page needs no CDN."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse, RedirectResponse
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from app.settings import ServerSettings


class PublicFiles(StaticFiles):
    """static/ minus what npm put there: only the site's own files are served."""

    async def get_response(self, path: str, scope: Scope):  # type: ignore[no-untyped-def]
        first = Path(path).parts[:1]
        if first and (first[0] == "node_modules" or first[0].startswith("package")):
            path = "__not_served__"
        return await super().get_response(path, scope)


def town_page(router: APIRouter, prefix: str, page: Path) -> None:
    """``<prefix>/<slug>/`` serves ``page`` (which reads the slug from its URL), and
    ``<prefix>/<slug>`` redirects there so relative links resolve."""

    @router.get(prefix + "/{slug}")
    async def redirect(slug: str) -> RedirectResponse:
        return RedirectResponse(f"{prefix}/{slug}/", status_code=308)

    @router.get(prefix + "/{slug}/")
    async def serve(slug: str) -> FileResponse:
        return FileResponse(page)


def mount(app: FastAPI, settings: ServerSettings) -> None:
    static = settings.static_dir
    vendor = static / "node_modules" / "maplibre-gl" / "dist"
    router = APIRouter(include_in_schema=False)

    @router.get("/")
    async def index() -> FileResponse:
        return FileResponse(static / "index.html")

    town_page(router, "/t", static / "town.html")
    app.include_router(router)
    app.mount("/static", PublicFiles(directory=static), name="static")
    # check_dir=False: the API still starts where the map assets are not installed
    # (a headless API server); the set-up installs them for the map.
    app.mount("/vendor/maplibre-gl", StaticFiles(directory=vendor, check_dir=False),
              name="maplibre")
