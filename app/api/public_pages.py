"""Pages beside the public town page (/t/<slug>/, app/api/pages.py): the dispatcher's live
fleet map, which shows every vehicle by its real name, undelayed."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from app.api.pages import town_page
from app.settings import ServerSettings


def mount(app: FastAPI, settings: ServerSettings) -> None:
    router = APIRouter(include_in_schema=False)
    town_page(router, "/dispatch/t", settings.static_dir / "dispatch.html")
    app.include_router(router)
