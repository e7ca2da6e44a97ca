"""`plowshare vehicles …` and `plowshare broker …` on a real PostGIS and a real Mosquitto
with the dynamic-security plugin: secrets printed once and stored only as hashes, the
broker and the database changed together, and the ingester's question answered."""

from __future__ import annotations

import argparse
import asyncio
import re
import stat
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from app import devices
from app.broker import Broker
from app.brokerauth import BrokerAuthError, DynsecClient
from app.cli_vehicles import add_vehicle, register
from app.errors import NotFound, PlowshareError
from app.settings import DatabaseSettings, MqttSettings, Settings
from tests.security.conftest import ADMIN_USER
from tests.security.mqtt_probe import Probe
from tests.support import add_town


def run_cli(settings: Settings, *argv: str) -> int:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(required=True))
    args = parser.parse_args(argv)
    result: int = args.func(settings, args)
    return result


@pytest.fixture
def cli_settings(database: str, secure_broker: Broker, admin_password: str,
                 monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("PLOWSHARE_BROKER_ADMIN_USERNAME", ADMIN_USER)
    monkeypatch.setenv("PLOWSHARE_BROKER_ADMIN_PASSWORD", admin_password)
    return Settings(database=DatabaseSettings(url=database),
                    mqtt=MqttSettings(port=secure_broker.port))


def printed(out: str, field: str) -> str:
    m = re.search(rf"^  {field}\s+(\S+)", out, re.M)
    assert m, out
    return m.group(1)


async def cli(capsys: pytest.CaptureFixture[str], settings: Settings, *argv: str) -> str:
    assert await asyncio.to_thread(run_cli, settings, *argv) == 0
    return capsys.readouterr().out


async def test_add_list_rotate_revoke(
    cli_settings: Settings, secure_broker: Broker, conn: asyncpg.Connection,
    capsys: pytest.CaptureFixture[str],
) -> None:
    await add_town(conn)
    out = await cli(capsys, cli_settings, "vehicles", "add", "--town", "kouvola",
                    "--id", "plow-1", "--label", "Plow 1")
    user, password = printed(out, "MQTT username"), printed(out, "MQTT password")
    token = printed(out, "HTTP token")
    assert user == "kouvola.plow-1" and len(password) >= 40
    assert devices.token_id_of(token) is not None
    # Only hashes are kept.
    dump = str([dict(r) for r in await conn.fetch("SELECT * FROM device_credentials")])
    assert password not in dump and token not in dump and "$argon2id$" in dump

    listing = await cli(capsys, cli_settings, "vehicles", "list", "--town", "kouvola")
    assert "plow-1\tPlow 1\tactive\tkouvola.plow-1" in listing
    assert password not in listing and token not in listing

    with Probe(secure_broker.port, user, password, client_id=user) as old:
        assert str(old.connect()) == "Success"
        out = await cli(capsys, cli_settings, "vehicles", "rotate", "--town", "kouvola",
                        "--id", "plow-1")
        assert await asyncio.to_thread(old.wait_disconnect)
    new_password = printed(out, "MQTT password")
    assert new_password != password and printed(out, "HTTP token") != token
    with Probe(secure_broker.port, user, password, client_id=user) as stale:
        assert str(stale.connect()) == "Not authorized"
    with Probe(secure_broker.port, user, new_password, client_id=user) as fresh:
        assert str(fresh.connect()) == "Success"
    town_id = await conn.fetchval("SELECT id FROM towns WHERE slug = 'kouvola'")
    assert await devices.is_active_device(conn, town_id, "plow-1")

    out = await cli(capsys, cli_settings, "vehicles", "revoke", "--town", "kouvola",
                    "--id", "plow-1")
    assert "credentials revoked" in out
    assert not await devices.is_active_device(conn, town_id, "plow-1")
    with Probe(secure_broker.port, user, new_password, client_id=user) as gone:
        assert str(gone.connect()) == "Not authorized"
    listing = await cli(capsys, cli_settings, "vehicles", "list", "--town", "kouvola")
    assert "plow-1\tPlow 1\trevoked" in listing
    # Two credentials in history, none live.
    assert await conn.fetchval("SELECT count(*) FILTER (WHERE revoked_at IS NOT NULL) "
                               "FROM device_credentials") == 2


async def test_add_refuses_a_vehicle_with_live_credentials_and_unknown_towns(
    cli_settings: Settings, conn: asyncpg.Connection, capsys: pytest.CaptureFixture[str],
) -> None:
    await add_town(conn)
    await cli(capsys, cli_settings, "vehicles", "add", "--town", "kouvola", "--id", "p1")
    with pytest.raises(devices.DeviceExists):
        await cli(capsys, cli_settings, "vehicles", "add", "--town", "kouvola", "--id", "p1")
    with pytest.raises(NotFound, match="no town 'nowhere'"):
        await cli(capsys, cli_settings, "vehicles", "add", "--town", "nowhere", "--id", "p1")
    with pytest.raises(PlowshareError):
        await cli(capsys, cli_settings, "vehicles", "add", "--town", "kouvola",
                  "--id", "bad/id")
    assert await conn.fetchval("SELECT count(*) FROM device_credentials") == 1


async def test_nothing_is_committed_when_the_broker_refuses(
    secure_broker: Broker, admin: DynsecClient, conn: asyncpg.Connection
) -> None:
    class FailingBroker(DynsecClient):
        def add_device(self, *a: Any, **kw: Any) -> None:
            raise BrokerAuthError("broker refused createClient: test")

    await add_town(conn)
    failing = FailingBroker.__new__(FailingBroker)
    failing.__dict__.update(admin.__dict__)
    with pytest.raises(BrokerAuthError):
        await add_vehicle(conn, failing, "plowshare", "kouvola", "plow-9", None)
    assert await conn.fetchval("SELECT count(*) FROM vehicles") == 0
    assert await conn.fetchval("SELECT count(*) FROM device_credentials") == 0
    # …and no half-made account is left on the broker.
    assert "kouvola.plow-9" not in admin.client_names()


async def test_no_broker_issues_an_http_token_only(
    database: str, conn: asyncpg.Connection, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("PLOWSHARE_BROKER_ADMIN_USERNAME", raising=False)
    monkeypatch.delenv("PLOWSHARE_BROKER_ADMIN_PASSWORD", raising=False)
    settings = Settings(database=DatabaseSettings(url=database))
    await add_town(conn)
    with pytest.raises(BrokerAuthError, match="PLOWSHARE_BROKER_ADMIN_USERNAME"):
        await cli(capsys, settings, "vehicles", "add", "--town", "kouvola", "--id", "p1")
    out = await cli(capsys, settings, "vehicles", "add", "--town", "kouvola", "--id", "p1",
                    "--no-broker")
    assert "MQTT password" not in out and printed(out, "HTTP token").startswith("pst_")
    listing = await cli(capsys, settings, "vehicles", "list", "--town", "kouvola")
    assert "(no broker)" in listing


async def test_active_devices_answers_per_town(conn: asyncpg.Connection) -> None:
    k = await add_town(conn)
    d = await add_town(conn, "drammen", "Drammen")
    await add_vehicle(conn, None, "plowshare", "kouvola", "live", None)
    await add_vehicle(conn, None, "plowshare", "kouvola", "revoked", None)
    await devices.revoke(conn, "kouvola", "revoked")
    await conn.execute("INSERT INTO vehicles (town_id, ident) VALUES ($1, 'bare')", k)
    keys = [(k, "live"), (k, "revoked"), (k, "bare"), (k, "ghost"), (d, "live")]
    assert await devices.active_devices(conn, keys) == {(k, "live")}
    assert [await devices.is_active_device(conn, t, i) for t, i in keys] == \
        [True, False, False, False, False]
    assert await devices.active_devices(conn, []) == set()


async def test_bootstrap_file_is_private_and_never_overwritten(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PLOWSHARE_BROKER_ADMIN_USERNAME", "admin")
    monkeypatch.setenv("PLOWSHARE_BROKER_ADMIN_PASSWORD", "a long admin password")
    path = tmp_path / "dynamic-security.json"
    await cli(capsys, Settings(), "broker", "bootstrap-file", str(path))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert "a long admin password" not in text and '"iterations": 210000' in text
    with pytest.raises(BrokerAuthError, match="exists"):
        await cli(capsys, Settings(), "broker", "bootstrap-file", str(path))
