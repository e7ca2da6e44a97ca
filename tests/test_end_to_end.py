"""The whole path on real processes: a device publishes over MQTT to a real Mosquitto, the
`plowshare ingest` process writes to PostGIS, and the `plowshare serve` process pushes the
positions to a websocket client."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import orjson
import paho.mqtt.client as mqtt
import pytest
import websockets

from app.broker import Broker, free_port
from tests.support import DISPATCH_AUTH, DISPATCH_TOKEN, add_town

PLOWSHARE = str(Path(sys.executable).with_name("plowshare"))


@pytest.fixture
def processes(broker: Broker, database: str, tmp_path: Path) -> Iterator[dict[str, object]]:
    port = free_port()
    env = {
        **os.environ,
        "PLOWSHARE_DATABASE_URL": database,
        "PLOWSHARE_MQTT_PORT": str(broker.port),
        "PLOWSHARE_MQTT_CLIENT_ID": f"e2e-{port}",
        "PLOWSHARE_HTTP_PORT": str(port),
        "PLOWSHARE_INGEST_FLUSH_INTERVAL_S": "0.1",
    }
    logs = {name: (tmp_path / f"{name}.log").open("wb") for name in ("ingest", "serve")}
    procs = {name: subprocess.Popen([PLOWSHARE, name], env=env, stdout=log,
                                    stderr=subprocess.STDOUT)
             for name, log in logs.items()}
    try:
        yield {"port": port, "procs": procs, "logs": tmp_path}
    finally:
        for p in procs.values():
            p.terminate()
        for name, p in procs.items():
            try:
                code = p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                code = p.wait()
            logs[name].close()
            # A clean stop on SIGTERM, not a crash.
            assert code in (0, -15), (tmp_path / f"{name}.log").read_text()


async def wait_http(url: str, timeout: float = 20) -> None:
    async with httpx.AsyncClient() as http:
        for _ in range(int(timeout * 10)):
            try:
                if (await http.get(url)).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError(f"{url} did not come up")


async def test_ping_from_mqtt_to_postgis_to_websocket(
    processes: dict[str, object], broker: Broker, conn: asyncpg.Connection
) -> None:
    await add_town(conn)
    port = processes["port"]
    await wait_http(f"http://127.0.0.1:{port}/healthz")
    await asyncio.sleep(1.0)  # the ingester's MQTT session subscribes

    device = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
                         client_id="plow-1-device")
    device.connect("127.0.0.1", broker.port)
    device.loop_start()
    try:
        async with websockets.connect(
            f"ws://127.0.0.1:{port}/ws/towns/kouvola?token={DISPATCH_TOKEN}"
        ) as ws:
            snapshot = orjson.loads(await asyncio.wait_for(ws.recv(), 10))
            assert snapshot == {"type": "snapshot", "town": "kouvola", "vehicles": []}
            t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=10)
            track = [(round(60.8680 + i * 0.0001, 7), 26.7040) for i in range(5)]
            seen: list[tuple[str, float]] = []
            for i, (lat, lon) in enumerate(track):
                fix = {"time": (t0 + timedelta(seconds=2 * i)).isoformat(), "lat": lat,
                       "lon": lon, "heading": 0, "speed": 5.0, "plow": True, "seq": i}
                info = device.publish("plowshare/kouvola/plow-1/position",
                                      orjson.dumps(fix), qos=1)
                await asyncio.to_thread(info.wait_for_publish, 10)
                while True:
                    msg = orjson.loads(await asyncio.wait_for(ws.recv(), 10))
                    if msg["type"] == "positions":
                        break
                [v] = msg["vehicles"]
                seen.append((v["time"], v["lat"]))
            assert seen == [((t0 + timedelta(seconds=2 * i)).isoformat(), lat)
                            for i, (lat, _) in enumerate(track)]
    finally:
        device.loop_stop()
        device.disconnect()

    rows = await conn.fetch(
        "SELECT seq, ST_Y(geom) AS lat, received_at >= fix_time AS after, raw "
        "FROM pings ORDER BY fix_time")
    assert [r["seq"] for r in rows] == [0, 1, 2, 3, 4]
    assert [r["lat"] for r in rows] == pytest.approx([lat for lat, _ in track])
    assert all(r["after"] for r in rows) and rows[0]["raw"]["plow"] is True
    async with httpx.AsyncClient() as http:
        [v] = (await http.get(f"http://127.0.0.1:{port}/api/towns/kouvola/vehicles",
                              headers=DISPATCH_AUTH)).json()
    assert v["lat"] == pytest.approx(track[-1][0])
