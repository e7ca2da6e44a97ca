"""docker/mosquitto.conf as shipped, on a real Mosquitto 2: the dynamic-security plugin
loads from the bare file name, anonymous clients are refused, plowshare's admin manages
devices, and the commented TLS block works once uncommented."""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.broker import TlsFiles, free_port, mosquitto_binary, port_open
from app.brokerauth import DynsecClient, write_bootstrap_file
from tests.security.conftest import ADMIN_USER
from tests.security.mqtt_probe import Probe

REPO = Path(__file__).resolve().parents[2]


def local_conf(tmp_path: Path, port: int, tls_port: int | None, pki: TlsFiles | None) -> str:
    text = (REPO / "docker" / "mosquitto.conf").read_text()
    assert re.search(r"^allow_anonymous false$", text, re.M)
    assert re.search(r"^plugin mosquitto_dynamic_security\.so$", text, re.M)
    text = re.sub(r"^listener 1883$", f"listener {port} 127.0.0.1", text, flags=re.M)
    text = text.replace("/mosquitto/data/", f"{tmp_path}/")
    if tls_port is not None and pki is not None:
        text = re.sub(r"^#listener 8883$", f"listener {tls_port} 127.0.0.1", text, flags=re.M)
        text = re.sub(r"^#(cafile|certfile|keyfile|tls_version) .*$",
                      lambda m: {"cafile": f"cafile {pki.cafile}",
                                 "certfile": f"certfile {pki.certfile}",
                                 "keyfile": f"keyfile {pki.keyfile}",
                                 "tls_version": "tls_version tlsv1.2"}[m[1]],
                      text, flags=re.M)
    if os.geteuid() == 0:
        text += "user root\n"
    return text


@pytest.fixture
def production_broker(tmp_path: Path, admin_password: str,
                      pki: TlsFiles) -> Iterator[tuple[int, int]]:
    port, tls_port = free_port(), free_port()
    write_bootstrap_file(tmp_path / "dynamic-security.json", ADMIN_USER, admin_password)
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(local_conf(tmp_path, port, tls_port, pki))
    log = (tmp_path / "mosquitto.log").open("wb")
    proc = subprocess.Popen([mosquitto_binary(), "-c", str(conf)], stdout=log,
                            stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while not (port_open(port) and port_open(tls_port)):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("docker/mosquitto.conf did not start: "
                            + (tmp_path / "mosquitto.log").read_text(), pytrace=False)
            time.sleep(0.05)
        yield port, tls_port
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


def test_shipped_config_enforces_accounts_and_serves_tls(
    production_broker: tuple[int, int], admin_password: str, pki: TlsFiles
) -> None:
    port, tls_port = production_broker
    with Probe(port, client_id="anon") as anon:
        assert str(anon.connect()) == "Not authorized"
    with DynsecClient("127.0.0.1", tls_port, ADMIN_USER, admin_password, tls=True,
                      ca_file=pki.cafile) as admin:
        admin.secure_defaults()
        admin.add_device("kouvola.plow-1", "s3cret-device-password", prefix="plowshare",
                         town="kouvola", ident="plow-1", label=None)
    with Probe(tls_port, "kouvola.plow-1", "s3cret-device-password",
               client_id="kouvola.plow-1", ca_file=pki.cafile) as dev:
        assert str(dev.connect()) == "Success"
        assert str(dev.publish("plowshare/kouvola/plow-2/position", b"{}")) == \
            "Not authorized"
