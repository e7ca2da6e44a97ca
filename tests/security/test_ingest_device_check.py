"""With device credentials enforced, the ingester stores fixes only for vehicles that are
active devices of the town the topic names (defence in depth behind the broker's ACLs:
a broker left open, or a topic the ACL did not foresee, still cannot create vehicles or
write as a revoked one). Needs the pipeline hook described in the devices report:
IngestSettings.require_device_credentials and app.devices.active_devices in resolve."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import orjson

from app.cli_vehicles import add_vehicle
from app.db import create_pool
from app.devices import revoke
from app.settings import DatabaseSettings, IngestSettings
from ingest.metrics import IngestMetrics
from ingest.model import Message
from ingest.pipeline import Pipeline
from tests.support import add_town


def message(topic: str, seconds_ago: int = 30) -> Message:
    now = datetime.now(UTC)
    t = now - timedelta(seconds=seconds_ago)
    return Message(topic=topic, received_at=now,
                   payload=orjson.dumps({"time": t.isoformat(), "lat": 60.87, "lon": 26.7}))


async def test_only_active_devices_of_the_topics_town_are_stored(
    database: str, conn: asyncpg.Connection
) -> None:
    await add_town(conn)
    await add_town(conn, "drammen", "Drammen")
    await add_vehicle(conn, None, "plowshare", "kouvola", "live", None)
    await add_vehicle(conn, None, "plowshare", "kouvola", "gone", None)
    await revoke(conn, "kouvola", "gone")
    enforce: dict[str, Any] = {"require_device_credentials": True}
    settings = IngestSettings(**enforce)
    pipeline = Pipeline(settings, IngestMetrics())
    pool = await create_pool(DatabaseSettings(url=database))
    try:
        batch = await pipeline.process(pool, [
            message("plowshare/kouvola/live/position"),
            message("plowshare/kouvola/gone/position"),      # revoked
            message("plowshare/kouvola/stranger/position"),  # never issued
            message("plowshare/drammen/live/position"),      # right name, wrong town
            Message(topic="owntracks/kouvola/stranger", received_at=datetime.now(UTC),
                    payload=orjson.dumps({"_type": "location", "lat": 60.87, "lon": 26.7,
                                          "tst": int(datetime.now(UTC).timestamp()) - 30})),
        ])
    finally:
        await pool.close()
    assert [(p.town, p.vehicle) for p in batch.stored] == [("kouvola", "live")]
    assert sorted(r.reason for r in batch.rejections) == ["unauthorized_device"] * 4
    # Nothing was auto-registered for the strangers.
    assert sorted(await conn.fetchval("SELECT array_agg(ident) FROM vehicles")) == \
        ["gone", "live"]
