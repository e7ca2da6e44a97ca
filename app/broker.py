"""A private Mosquitto 2 broker with plowshare's settings, for the demo and the tests.

Production brokers get the same settings (see docker/mosquitto.conf): persistence on and
saved often, and a per-client queue far above Mosquitto's default of 1000 messages, past
which it drops QoS 1 messages for an offline client *silently*. Optionally, as in
production: device accounts through the dynamic-security plugin (anonymous clients
refused) and a TLS-only listener.
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
MESSAGE_SIZE_LIMIT = 1_048_576
# Debian's multiarch path first; a bare name lets the dynamic loader search its own paths
# (the eclipse-mosquitto image keeps the plugin in /usr/lib).
_DYNSEC_PLUGINS = ("/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so",
                   "/usr/lib/aarch64-linux-gnu/mosquitto_dynamic_security.so",
                   "/usr/lib/mosquitto_dynamic_security.so")


def dynsec_plugin() -> str:
    return next((p for p in _DYNSEC_PLUGINS if Path(p).exists()),
                "mosquitto_dynamic_security.so")


@dataclass(frozen=True)
class TlsFiles:
    """PEM files for a TLS listener: the CA that signed the server certificate (given to
    clients too), the server's certificate and its private key."""

    cafile: Path
    certfile: Path
    keyfile: Path


def config_text(
    port: int,
    data_dir: Path,
    *,
    allow_anonymous: bool = True,
    extra: str = "",
    tls: TlsFiles | None = None,
    dynsec_file: Path | None = None,
    message_size_limit: int = MESSAGE_SIZE_LIMIT,
) -> str:
    lines = [f"listener {port} 127.0.0.1"]
    if tls is not None:
        # This listener speaks TLS only: a plain MQTT client cannot even get a CONNACK.
        lines += [f"cafile {tls.cafile}", f"certfile {tls.certfile}",
                  f"keyfile {tls.keyfile}", "tls_version tlsv1.2"]
    if dynsec_file is not None:
        # Accounts and ACLs live in the plugin and change over $CONTROL, without restart.
        allow_anonymous = False
        lines += [f"plugin {dynsec_plugin()}", f"plugin_opt_config_file {dynsec_file}"]
    lines += [
        f"allow_anonymous {'true' if allow_anonymous else 'false'}",
        "persistence true",
        f"persistence_location {data_dir}/",
        "autosave_interval 1",
        "autosave_on_changes false",
        f"max_queued_messages {MAX_QUEUED_MESSAGES}",
        "max_inflight_messages 1000",
        f"message_size_limit {message_size_limit}",
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
    tls: TlsFiles | None = None
    # (username, password) of the dynamic-security admin; None: no plugin.
    dynsec_admin: tuple[str, str] | None = None
    message_size_limit: int = MESSAGE_SIZE_LIMIT

    @property
    def config_path(self) -> Path:
        return self.data_dir / "mosquitto.conf"

    @property
    def dynsec_file(self) -> Path | None:
        return None if self.dynsec_admin is None else self.data_dir / "dynamic-security.json"

    def start(self, timeout_s: float = 10.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        dynsec_file = self.dynsec_file
        if dynsec_file is not None and self.dynsec_admin is not None \
                and not dynsec_file.exists():
            from app.brokerauth import write_bootstrap_file

            write_bootstrap_file(dynsec_file, *self.dynsec_admin)
        self.config_path.write_text(config_text(
            self.port, self.data_dir, allow_anonymous=self.allow_anonymous,
            extra=self.extra_config, tls=self.tls, dynsec_file=dynsec_file,
            message_size_limit=self.message_size_limit))
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
