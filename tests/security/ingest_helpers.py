"""Running the real ingester against a secured broker, and waiting on the database."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import paho.mqtt.client as mqtt
from pydantic import SecretStr

from app.broker import Broker
from app.settings import (
    CoverageSettings,
    DatabaseSettings,
    IngestSettings,
    MqttSettings,
    Settings,
)
from ingest.mqtt import subscriptions
from ingest.service import Ingester
from tests.security.mqtt_probe import Probe

INGEST_USER = "plowshare-ingest"


def secured_settings(
    database: str, broker: Broker, *, password: str, ca_file: Path | None = None,
    **ingest: Any,
) -> Settings:
    return Settings(
        database=DatabaseSettings(url=database),
        mqtt=MqttSettings(port=broker.port, username=INGEST_USER,
                          password=SecretStr(password),
                          client_id=f"ingest-{secrets.token_hex(3)}",
                          tls=ca_file is not None, ca_file=ca_file),
        ingest=IngestSettings(flush_interval_s=0.1, **ingest),
        coverage=CoverageSettings(enabled=False),
    )


def prepare_session(settings: Settings) -> None:
    """Create the ingester's persistent session and subscriptions before it runs, so a
    message published right after start is queued for it rather than missed."""
    m = settings.mqtt
    assert m.password is not None
    with Probe(m.port, m.username, m.password.get_secret_value(), client_id=m.client_id,
               ca_file=m.ca_file, protocol=mqtt.MQTTv311, clean_session=False) as p:
        reason = p.connect()
        assert p.accepted, f"ingester account refused: {reason}"
        for topic in subscriptions(m):
            assert p.subscribe(topic), f"ingester may not subscribe to {topic}"


@contextlib.asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[Ingester]:
    await asyncio.to_thread(prepare_session, settings)
    ingester = Ingester(settings)
    task = asyncio.create_task(ingester.run())
    try:
        yield ingester
    finally:
        ingester.stop()
        await asyncio.wait_for(task, 15)


async def wait_count(conn: asyncpg.Connection, sql: str, want: int,
                     timeout: float = 20) -> int:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    got = -1
    while loop.time() < deadline:
        got = int(await conn.fetchval(sql))
        if got >= want:
            return got
        await asyncio.sleep(0.05)
    return got
