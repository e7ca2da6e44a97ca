"""Dependency aliases, as in FastAPI's full-stack template."""

from __future__ import annotations

from typing import Annotated

import asyncpg
from fastapi import Depends
from starlette.requests import HTTPConnection

from app.live import LiveHub
from app.settings import Settings


def get_pool(conn: HTTPConnection) -> asyncpg.Pool:
    pool: asyncpg.Pool = conn.app.state.pool
    return pool


def get_hub(conn: HTTPConnection) -> LiveHub:
    hub: LiveHub = conn.app.state.hub
    return hub


def get_settings(conn: HTTPConnection) -> Settings:
    settings: Settings = conn.app.state.settings
    return settings


PoolDep = Annotated[asyncpg.Pool, Depends(get_pool)]
HubDep = Annotated[LiveHub, Depends(get_hub)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
