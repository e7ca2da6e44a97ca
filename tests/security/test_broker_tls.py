"""A TLS-only listener (CA made by the test): plain TCP gets nowhere, a client that does not
trust the CA refuses the broker, and devices, the admin and the ingester work over TLS."""

from __future__ import annotations

import asyncio
import secrets
import socket
import ssl
from datetime import UTC, datetime, timedelta

import asyncpg
import orjson
import pytest

from app.broker import Broker, TlsFiles
from app.brokerauth import DynsecClient
from app.cli_vehicles import add_vehicle, init_broker
from tests.security.conftest import ADMIN_USER
from tests.security.ingest_helpers import running, secured_settings, wait_count
from tests.security.mqtt_probe import Probe
from tests.support import add_town


async def test_plain_tcp_is_refused_where_tls_is_required(
    tls_broker: Broker, pki: TlsFiles, admin_password: str
) -> None:
    with Probe(tls_broker.port, ADMIN_USER, admin_password, client_id="plain") as plain:
        answer = plain.connect(timeout=5)
    assert not plain.accepted, answer
    # TLS with the system's CAs only: the broker's certificate is not trusted.
    with pytest.raises(ssl.SSLCertVerificationError), \
            socket.create_connection(("127.0.0.1", tls_broker.port), timeout=5) as raw, \
            ssl.create_default_context().wrap_socket(raw, server_hostname="127.0.0.1"):
        pass
    # With the CA, the handshake succeeds (the certificate names 127.0.0.1).
    context = ssl.create_default_context(cafile=str(pki.cafile))
    with socket.create_connection(("127.0.0.1", tls_broker.port), timeout=5) as raw, \
            context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        assert tls.version() in ("TLSv1.2", "TLSv1.3")


async def test_devices_admin_and_ingester_work_over_tls(
    tls_broker: Broker, pki: TlsFiles, admin_password: str, conn: asyncpg.Connection,
    database: str,
) -> None:
    await add_town(conn)
    password = secrets.token_urlsafe(24)
    settings = secured_settings(database, tls_broker, password=password,
                                ca_file=pki.cafile)
    with DynsecClient("127.0.0.1", tls_broker.port, ADMIN_USER, admin_password, tls=True,
                      ca_file=pki.cafile) as admin:
        creds = await add_vehicle(conn, admin, "plowshare", "kouvola", "plow-1", None)
        await init_broker(conn, admin, settings)
    t = (datetime.now(UTC) - timedelta(seconds=30)).isoformat()
    async with running(settings):
        with Probe(tls_broker.port, creds.mqtt_username, creds.mqtt_password,
                   client_id=creds.mqtt_username, ca_file=pki.cafile) as dev:
            assert str(await asyncio.to_thread(dev.connect)) == "Success"
            reason = await asyncio.to_thread(
                dev.publish, "plowshare/kouvola/plow-1/position",
                orjson.dumps({"time": t, "lat": 60.87, "lon": 26.7}))
            assert str(reason) == "Success"
        assert await wait_count(conn, "SELECT count(*) FROM pings", 1) == 1
