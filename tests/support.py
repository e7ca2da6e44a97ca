"""Helpers shared by tests (fixtures live in conftest.py)."""

from __future__ import annotations

import asyncio
import os
import secrets
from datetime import UTC, datetime

import asyncpg
import orjson

from app.settings import DatabaseSettings, IngestSettings, MqttSettings, Settings
from ingest.model import Message

# The dispatcher's feeds need the dispatch token; every test server gets this one.
DISPATCH_TOKEN = os.environ.setdefault("PLOWSHARE_PUBLIC_DISPATCH_TOKEN", "test-dispatch-token")
DISPATCH_AUTH = {"Authorization": f"Bearer {DISPATCH_TOKEN}"}

ADMIN_URL = os.environ.get(
    "PLOWSHARE_TEST_ADMIN_URL", "postgresql://plowshare:plowshare@127.0.0.1:5432/postgres"
)


def db_url(name: str) -> str:
    return ADMIN_URL.rsplit("/", 1)[0] + "/" + name

def make_settings(database: str, broker_port: int = 1883, **ingest: object) -> Settings:
    return Settings(
        database=DatabaseSettings(url=database),
        mqtt=MqttSettings(port=broker_port, client_id=f"ingest-{secrets.token_hex(3)}"),
        ingest=IngestSettings(**ingest),  # type: ignore[arg-type]
    )


def position_message(vehicle: str, payload: object, town: str = "kouvola") -> Message:
    """A native position message as the broker delivers it (bytes go in as they are)."""
    raw = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    return Message(f"plowshare/{town}/{vehicle}/position", raw, datetime.now(UTC), 1, 1)


async def add_town(conn: asyncpg.Connection, slug: str = "kouvola", name: str = "Kouvola") -> int:
    town_id: int = await conn.fetchval(
        "INSERT INTO towns (slug, name) VALUES ($1, $2) RETURNING id", slug, name
    )
    return town_id


class LiveServer:
    """The real app under a real uvicorn, in this event loop, on a free port."""

    def __init__(self, settings: Settings) -> None:
        import uvicorn

        from app.broker import free_port
        from app.main import create_app

        self.port = free_port()
        self.app = create_app(settings)
        self.server = uvicorn.Server(uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, log_level="warning",
            ws_per_message_deflate=False, lifespan="on"))
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    async def __aenter__(self) -> LiveServer:
        self._task = asyncio.create_task(self.server.serve())
        for _ in range(200):
            if self.server.started:
                return self
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.05)
        raise RuntimeError("uvicorn did not start")

    async def __aexit__(self, *exc: object) -> None:
        self.server.should_exit = True
        if self._task is not None:
            await asyncio.wait_for(self._task, 15)
