"""Pages beside the public town page (/t/<slug>/, app/api/pages.py): the dispatcher's live
fleet map, which shows every vehicle by its real name, undelayed."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse, RedirectResponse

from app.settings import ServerSettings


def mount(app: FastAPI, settings: ServerSettings) -> None:
    static = settings.static_dir
    router = APIRouter(include_in_schema=False)

    @router.get("/dispatch/t/{slug}")
    async def dispatch_redirect(slug: str) -> RedirectResponse:
        return RedirectResponse(f"/dispatch/t/{slug}/", status_code=308)

    @router.get("/dispatch/t/{slug}/")
    async def dispatch_page(slug: str) -> FileResponse:
        return FileResponse(static / "dispatch.html")

    app.include_router(router)
