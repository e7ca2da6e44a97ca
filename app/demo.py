"""``plowshare demo``: a real town on a local setup, everything running, one Ctrl-C away.

Prepares the database (create, migrate, add the town, import its streets once), uses the
MQTT broker already listening on the configured port or starts a private one under
``.run/``, then runs the ingester, the API server and a simulated fleet as separate
processes — the same processes a production deployment runs.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

from app.broker import Broker, free_port, port_open
from app.commands import add_town, import_streets_file, migrate
from app.db import connect
from app.settings import REPO_ROOT, Settings
from app.storms import start_storm


async def _prepare(settings: Settings, osm: Path, town: str, name: str) -> None:
    await migrate(settings, create=True)
    await add_town(settings, town, name, "UTC")
    conn = await connect(settings.database)
    try:
        has_streets = await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM street_segments s JOIN towns t ON t.id = s.town_id"
            " WHERE t.slug = $1 AND s.valid_to IS NULL)", town)
    finally:
        await conn.close()
    if not has_streets:
        result = await import_streets_file(settings, town, osm)
        print(f"imported {result.added} street segments from {osm.name}")
    conn = await connect(settings.database)
    try:
        # The public map counts "this storm" from its start: the demo is a storm.
        running = await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM storms s JOIN towns t ON t.id = s.town_id"
            " WHERE t.slug = $1 AND s.ended_at IS NULL)", town)
        if not running:
            await start_storm(conn, town, "Demo storm")
            print("started a storm")
    finally:
        await conn.close()


def run_demo(
    settings: Settings, *, osm: Path, town: str, name: str, vehicles: int, speedup: float
) -> int:
    # Ctrl-C, and a plain kill, both stop everything the demo started (a shell that ran
    # the demo in the background may have left SIGINT ignored).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    asyncio.run(_prepare(settings, osm, town, name))
    env = os.environ.copy()
    broker: Broker | None = None
    if settings.mqtt.host in ("127.0.0.1", "localhost") and "PLOWSHARE_MQTT_PORT" not in env:
        # A private broker with plowshare's settings (queue limits, persistence), not
        # whatever broker happens to listen on 1883 with Mosquitto's lossy defaults.
        port = settings.mqtt.port if not port_open(settings.mqtt.port) else free_port()
        broker = Broker(port=port, data_dir=REPO_ROOT / ".run" / "mosquitto")
        broker.start()
        env["PLOWSHARE_MQTT_PORT"] = str(port)
        print(f"started a private Mosquitto on port {port}")
    exe = str(Path(sys.executable).with_name("plowshare"))
    commands = {
        "ingest": [exe, "ingest"],
        "serve": [exe, "serve"],
        "simulate": [exe, "simulate", "--town", town, "--vehicles", str(vehicles),
                     "--interval", "1", "--speedup", str(speedup),
                     "--state-dir", str(REPO_ROOT / ".run" / "devices")],
    }
    # The dispatcher's fleet map needs a token; the demo makes one for this run.
    token = env.setdefault("PLOWSHARE_PUBLIC_DISPATCH_TOKEN", secrets.token_urlsafe(18))
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for label, cmd in commands.items():
            procs[label] = subprocess.Popen(cmd, env=env)
            if label == "serve":
                _wait_http(settings)
        host = settings.server.host if settings.server.host != "0.0.0.0" else "127.0.0.1"
        base = f"http://{host}:{settings.server.port}"
        print(f"\n  plowshare demo is running: {base}/t/{town}/"
              f"\n  dispatcher's fleet map:    {base}/dispatch/t/{town}/#token={token}"
              f"\n  {vehicles} simulated plows on the streets of {name} "
              "(map data © OpenStreetMap contributors). Ctrl-C stops everything.\n",
              flush=True)
        while True:
            for label, proc in procs.items():
                code = proc.poll()
                if code is not None:
                    print(f"plowshare {label} exited with {code}; stopping the demo",
                          file=sys.stderr)
                    return code or 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        return 0
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        if broker is not None:
            broker.stop()


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def _wait_http(settings: Settings, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    port = settings.server.port
    while time.monotonic() < deadline:
        if port_open(port):
            return
        time.sleep(0.2)
    raise RuntimeError(f"the server did not listen on port {port} within {timeout_s:.0f}s")
