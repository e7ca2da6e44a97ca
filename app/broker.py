"""A private Mosquitto 2 broker with plowshare's settings, for the demo and the tests.

Production brokers get the same settings (see docker/mosquitto.conf): persistence on and
saved often, and a per-client queue far above Mosquitto's default of 1000 messages, past
which it drops QoS 1 messages for an offline client *silently*.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

# Enough for ~8 hours of 1 Hz fixes for one vehicle while the ingester is down.
MAX_QUEUED_MESSAGES = 100_000


def config_text(
    port: int,
    data_dir: Path,
    *,
    allow_anonymous: bool = True,
    extra: str = "",
) -> str:
    lines = [
        f"listener {port} 127.0.0.1",
        f"allow_anonymous {'true' if allow_anonymous else 'false'}",
        "persistence true",
        f"persistence_location {data_dir}/",
        "autosave_interval 1",
        "autosave_on_changes false",
        f"max_queued_messages {MAX_QUEUED_MESSAGES}",
        "max_inflight_messages 1000",
        "message_size_limit 1048576",
        f"pid_file {data_dir}/mosquitto.pid",
        "log_dest stderr",
        "log_type error",
        "log_type warning",
        "log_type notice",
    ]
    if os.geteuid() == 0:
        # Keep root so the broker can write into a data directory that belongs to us.
        lines.append("user root")
    return "\n".join(lines) + "\n" + extra


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def mosquitto_binary() -> str:
    found = shutil.which("mosquitto") or ("/usr/sbin/mosquitto"
                                          if Path("/usr/sbin/mosquitto").exists() else None)
    if found is None:
        raise RuntimeError("mosquitto is not installed (Debian package 'mosquitto'); "
                           "run `make setup`")
    return found


@dataclass
class Broker:
    port: int
    data_dir: Path
    process: subprocess.Popen[bytes] | None = None
    extra_config: str = ""
    allow_anonymous: bool = True

    @property
    def config_path(self) -> Path:
        return self.data_dir / "mosquitto.conf"

    def start(self, timeout_s: float = 10.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(config_text(self.port, self.data_dir,
                                                allow_anonymous=self.allow_anonymous,
                                                extra=self.extra_config))
        with (self.data_dir / "mosquitto.log").open("ab") as log:
            self.process = subprocess.Popen(
                [mosquitto_binary(), "-c", str(self.config_path)],
                stdout=log, stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mosquitto exited with {self.process.returncode}; "
                                   f"see {self.data_dir / 'mosquitto.log'}")
            if port_open(self.port):
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"mosquitto did not listen on {self.port} within {timeout_s}s")

    def stop(self, kill: bool = False) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            if kill:
                self.process.kill()
            else:
                self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
