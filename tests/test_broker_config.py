"""The production broker configuration is accepted by a real Mosquitto 2 and keeps the
settings that protect data."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

from app.broker import free_port, mosquitto_binary, port_open

REPO = Path(__file__).resolve().parents[1]


def test_docker_mosquitto_conf_runs_on_real_mosquitto(tmp_path: Path) -> None:
    text = (REPO / "docker" / "mosquitto.conf").read_text()
    queued = re.search(r"^max_queued_messages (\d+)$", text, re.M)
    assert queued is not None and int(queued[1]) >= 100_000
    assert re.search(r"^persistence true$", text, re.M)
    port = free_port()
    # Same file, with only the listener and the data path moved for this test.
    local = re.sub(r"^listener 1883$", f"listener {port} 127.0.0.1", text, flags=re.M)
    local = local.replace("/mosquitto/data/", f"{tmp_path}/")
    local += "user root\n"
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(local)
    proc = subprocess.Popen([mosquitto_binary(), "-c", str(conf)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        for _ in range(100):
            if port_open(port) or proc.poll() is not None:
                break
            time.sleep(0.05)
        assert proc.poll() is None, proc.communicate()[0].decode()
        assert port_open(port)
    finally:
        proc.terminate()
        proc.communicate(timeout=10)
