"""``plowshare simulate``: a fleet of simulated plows on a town's imported streets,
each a separate MQTT device (the reference device client: QoS 1, durable buffer,
end-to-end acknowledgements) publishing the native format.

Fix times are the real time of publication. With ``speedup`` > 1 the trucks cover
``speedup`` times the ground per real second (and report the speed they appear to drive),
which makes a demo lively without sending fixes from the future.
"""

from __future__ import annotations

import asyncio
import logging
import random
from datetime import UTC, datetime
from pathlib import Path

from app.db import connect
from app.device_client import DeviceClient
from app.importer import town_segments
from app.settings import MqttSettings, Settings
from geo.graph import StreetGraph
from geo.simulate import SimFix, iter_drive

log = logging.getLogger(__name__)


def native_fix(fix: SimFix, speedup: float = 1.0) -> dict[str, object]:
    """The native JSON fields of a simulated fix (the device client adds ``seq``)."""
    return {
        "time": fix.time.isoformat(),
        "lat": round(fix.lat, 7),
        "lon": round(fix.lon, 7),
        "speed": round(fix.speed_mps * speedup, 2),
        "heading": round(fix.heading_deg, 1),
        "plow": fix.plow,
    }


def device(settings: MqttSettings, town: str, vehicle: str,
           state_dir: Path | None) -> DeviceClient:
    # A device's sequence numbers must survive its restarts (acknowledgements refer to
    # them), so each simulated device keeps its buffer in state_dir when given.
    buffer = None
    if state_dir is not None:
        state_dir.mkdir(parents=True, exist_ok=True)
        buffer = state_dir / f"{town}-{vehicle}.sqlite"
    client = DeviceClient(host=settings.host, port=settings.port, town=town,
                          vehicle=vehicle, buffer_path=buffer, username=settings.username,
                          password=settings.password.get_secret_value()
                          if settings.password else None,
                          prefix=settings.topic_prefix)
    client.start()
    return client


async def run_simulation(
    settings: Settings,
    *,
    town: str,
    vehicles: int,
    interval_s: float,
    speedup: float = 1.0,
    duration_s: float | None = None,
    seed: int = 1,
    state_dir: Path | None = None,
) -> int:
    conn = await connect(settings.database)
    try:
        town_id = await conn.fetchval("SELECT id FROM towns WHERE slug = $1", town)
        if town_id is None:
            raise LookupError(f"no town '{town}': add it with `plowshare towns add`")
        # By source id, as before: a seed keeps giving the same drive.
        segments = sorted((seg for _id, seg in await town_segments(conn, town_id)),
                          key=lambda seg: seg.source_id)
    finally:
        await conn.close()
    if not segments:
        raise LookupError(f"town '{town}' has no streets: run `plowshare streets import`")
    graph = StreetGraph(segments)
    rng = random.Random(seed)
    now = datetime.now(UTC)
    trucks = [
        iter_drive(graph, random.Random(rng.random()), interval_s=interval_s * speedup,
                   start_time=now)
        for _ in range(vehicles)
    ]
    clients = [device(settings.mqtt, town, f"plow-{i + 1}", state_dir)
               for i in range(vehicles)]
    log.info("simulating %d plows on %d segments of %s", vehicles, len(segments), town)
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        while duration_s is None or (loop.time() - started) * speedup < duration_s:
            tick = loop.time()
            published_at = datetime.now(UTC)
            for truck, client in zip(trucks, clients, strict=True):
                fix = next(truck)
                client.send(native_fix(
                    SimFix(published_at, fix.lon, fix.lat, fix.heading_deg, fix.speed_mps,
                           fix.source_id, fix.forward, fix.plow), speedup))
            await asyncio.sleep(max(0.0, interval_s - (loop.time() - tick)))
        # Done: give the last fixes a moment to be acknowledged end to end.
        await asyncio.gather(*(asyncio.to_thread(c.wait_all_acked, 10.0) for c in clients))
    finally:
        for client in clients:
            client.stop()
    return 0
