"""Device credentials enforced by a real Mosquitto 2 (dynamic-security plugin) in front of
the real ingester and a real PostGIS: who may connect, publish, subscribe and read."""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime, timedelta

import asyncpg
import orjson
import paho.mqtt.client as mqtt

from app.broker import Broker
from app.brokerauth import DynsecClient
from app.cli_vehicles import add_vehicle, init_broker, revoke_vehicle
from app.devices import IssuedCredentials
from tests.security.ingest_helpers import INGEST_USER, running, secured_settings, wait_count
from tests.security.mqtt_probe import Probe, settle
from tests.support import add_town

PREFIX = "plowshare"


def fix(seconds_ago: float = 60, lat: float = 60.868, seq: int = 0) -> bytes:
    t = datetime.now(UTC) - timedelta(seconds=seconds_ago)
    return orjson.dumps({"time": t.isoformat(), "lat": lat, "lon": 26.704, "seq": seq})


def device(broker: Broker, creds: IssuedCredentials, **kw: object) -> Probe:
    return Probe(broker.port, creds.mqtt_username, creds.mqtt_password,
                 client_id=str(kw.pop("client_id", creds.mqtt_username)), **kw)  # type: ignore[arg-type]


async def two_devices(
    conn: asyncpg.Connection, admin: DynsecClient
) -> tuple[IssuedCredentials, IssuedCredentials]:
    await add_town(conn)
    a = await add_vehicle(conn, admin, PREFIX, "kouvola", "plow-a", "Plow A")
    b = await add_vehicle(conn, admin, PREFIX, "kouvola", "plow-b", None)
    return a, b


async def test_only_known_accounts_with_the_right_password_connect(
    secure_broker: Broker, admin: DynsecClient, conn: asyncpg.Connection
) -> None:
    a, _ = await two_devices(conn, admin)
    port = secure_broker.port
    with Probe(port, client_id="anon") as anon:
        assert str(anon.connect()) == "Not authorized"
    with Probe(port, a.mqtt_username, None, client_id=a.mqtt_username) as no_password:
        assert str(no_password.connect()) in ("Not authorized", "Bad user name or password")
    with Probe(port, a.mqtt_username, "wrong" + (a.mqtt_password or ""),
               client_id=a.mqtt_username) as wrong:
        assert str(wrong.connect()) in ("Not authorized", "Bad user name or password")
    with Probe(port, "kouvola.nobody", a.mqtt_password, client_id="kouvola.nobody") as who:
        assert who.connect().is_failure
    with device(secure_broker, a) as ok:
        assert str(ok.connect()) == "Success"


async def test_a_device_account_only_works_with_its_own_client_id(
    secure_broker: Broker, admin: DynsecClient, conn: asyncpg.Connection
) -> None:
    """Otherwise a device could log in as the ingester's client id, kick the ingester and
    take over its persistent session."""
    a, b = await two_devices(conn, admin)
    with device(secure_broker, a, client_id="plowshare-ingest-1") as thief:
        assert str(thief.connect()) == "Not authorized"
    with device(secure_broker, a, client_id=b.mqtt_username) as thief:
        assert str(thief.connect()) == "Not authorized"


async def test_a_device_publishes_only_to_its_own_topics(
    secure_broker: Broker, admin: DynsecClient, conn: asyncpg.Connection, database: str
) -> None:
    a, _ = await two_devices(conn, admin)
    password = secrets.token_urlsafe(24)
    settings = secured_settings(database, secure_broker, password=password)
    await init_broker(conn, admin, settings)
    async with running(settings):
        with device(secure_broker, a) as dev:
            assert str(await asyncio.to_thread(dev.connect)) == "Success"
            # Another vehicle's topics, native and OwnTracks, and topics outside the scheme:
            for topic in ("plowshare/kouvola/plow-b/position", "owntracks/kouvola/plow-b",
                          "plowshare/drammen/plow-a/position", "plowshare/kouvola/plow-a/ack",
                          "plowshare/kouvola/plow-a/position/x", "anything"):
                reason = await asyncio.to_thread(dev.publish, topic, fix(seq=9))
                assert str(reason) == "Not authorized", topic
            reason = await asyncio.to_thread(dev.publish, "plowshare/kouvola/plow-a/position",
                                             fix(seq=1))
            assert str(reason) == "Success"
        assert await wait_count(conn, "SELECT count(*) FROM pings", 1) == 1
    rows = await conn.fetch("SELECT v.ident, p.seq FROM pings p JOIN vehicles v "
                            "ON v.id = p.vehicle_id")
    assert [(r["ident"], r["seq"]) for r in rows] == [("plow-a", 1)]
    # The refused messages never reached the ingester: nothing to quarantine either.
    assert await conn.fetchval("SELECT count(*) FROM rejected_pings") == 0


async def test_a_device_reads_only_its_own_ack_topic(
    secure_broker: Broker, admin: DynsecClient, conn: asyncpg.Connection, database: str
) -> None:
    a, _ = await two_devices(conn, admin)
    password = secrets.token_urlsafe(24)
    await init_broker(conn, admin, secured_settings(database, secure_broker,
                                                    password=password))
    with device(secure_broker, a) as dev, \
            Probe(secure_broker.port, INGEST_USER, password, client_id="acker") as acker:
        dev.connect()
        assert str(acker.connect()) == "Success"
        assert not dev.subscribe("plowshare/kouvola/plow-b/ack")
        assert not dev.subscribe("plowshare/+/+/ack")
        assert not dev.subscribe("plowshare/#")
        assert not dev.subscribe("plowshare/+/+/position")
        assert not dev.subscribe("owntracks/+/+")
        assert dev.subscribe("plowshare/kouvola/plow-a/ack")
        # The other vehicle's ack first, then ours: once ours is in, the other would be too.
        # (MQTT 5 even says no one holds a subscription that matches it.)
        assert str(acker.publish("plowshare/kouvola/plow-b/ack", b'{"seq": 7}')) in (
            "Success", "No matching subscribers")
        assert str(acker.publish("plowshare/kouvola/plow-a/ack", b'{"seq": 3}')) == "Success"
        assert dev.wait_message("plowshare/kouvola/plow-a/ack") == b'{"seq": 3}'
        settle(dev)
        assert [t for t, _ in dev.messages] == ["plowshare/kouvola/plow-a/ack"]


async def test_the_ingester_account_reads_positions_and_writes_acks_only(
    secure_broker: Broker, admin: DynsecClient, conn: asyncpg.Connection, database: str
) -> None:
    password = secrets.token_urlsafe(24)
    await init_broker(conn, admin, secured_settings(database, secure_broker,
                                                    password=password))
    with Probe(secure_broker.port, INGEST_USER, password, client_id="ing") as ing:
        assert str(ing.connect()) == "Success"
        for allowed in ("plowshare/+/+/position", "$share/workers/plowshare/+/+/position",
                        "owntracks/+/+", "$share/workers/owntracks/+/+"):
            assert ing.subscribe(allowed), allowed
        for refused in ("#", "plowshare/#", "$CONTROL/dynamic-security/#", "$SYS/#"):
            assert not ing.subscribe(refused), refused
        assert str(ing.publish("plowshare/kouvola/plow-a/position", fix())) == \
            "Not authorized"
        assert str(ing.publish("$CONTROL/dynamic-security/v1", b"{}")) == "Not authorized"


async def test_a_revoked_device_is_disconnected_and_refused_without_a_broker_restart(
    secure_broker: Broker, admin: DynsecClient, conn: asyncpg.Connection
) -> None:
    a, b = await two_devices(conn, admin)
    assert secure_broker.process is not None
    pid = secure_broker.process.pid
    with device(secure_broker, a) as dev_a, device(secure_broker, b) as dev_b:
        assert str(dev_a.connect()) == "Success" and str(dev_b.connect()) == "Success"
        assert await revoke_vehicle(conn, admin, "kouvola", "plow-a")
        assert await asyncio.to_thread(dev_a.wait_disconnect), "revoked device still online"
        # Only the revoked device was cut off.
        assert str(dev_b.publish("plowshare/kouvola/plow-b/position", fix())) in (
            "Success", "No matching subscribers")
        assert not dev_b.disconnects
    with device(secure_broker, a) as again:
        assert str(again.connect()) == "Not authorized"
    assert secure_broker.process is not None and secure_broker.process.pid == pid
    assert secure_broker.process.poll() is None
    # Revoking twice is fine (and retries the broker side).
    assert not await revoke_vehicle(conn, admin, "kouvola", "plow-a")


async def test_oversized_messages_are_dropped_by_the_broker_or_quarantined_by_the_ingester(
    secure_broker: Broker, admin: DynsecClient, conn: asyncpg.Connection, database: str
) -> None:
    """Broker: message_size_limit (64 KiB here) drops the message. Below that, the
    ingester's own limit quarantines it as payload_too_large with the payload kept whole.

    What the device learns of the broker's drop depends on its MQTT version: 3.1.1 gets a
    plain PUBACK (nothing to tell); Mosquitto 2.0.11 answers MQTT 5 with reason 0x95,
    which paho-mqtt 2.2 treats as a malformed packet and disconnects."""
    a, _ = await two_devices(conn, admin)
    password = secrets.token_urlsafe(24)
    settings = secured_settings(database, secure_broker, password=password,
                                max_payload_bytes=4096)
    await init_broker(conn, admin, settings)
    topic = "plowshare/kouvola/plow-a/position"
    big = b"[" + b" " * 8000 + fix(seq=1) + b"]"
    huge = b"[" + b" " * (100 * 1024) + fix(seq=2) + b"]"
    async with running(settings):
        with device(secure_broker, a, protocol=mqtt.MQTTv311) as dev:
            await asyncio.to_thread(dev.connect)
            assert str(await asyncio.to_thread(dev.publish, topic, huge)) == "Success"
            assert str(await asyncio.to_thread(dev.publish, topic, big)) == "Success"
            assert str(await asyncio.to_thread(dev.publish, topic, fix(seq=3))) == "Success"
        assert await wait_count(conn, "SELECT count(*) FROM pings", 1) == 1
        assert await wait_count(conn, "SELECT count(*) FROM rejected_pings", 1) == 1
    [r] = await conn.fetch("SELECT reason, length(payload) AS n, vehicle_ident "
                           "FROM rejected_pings")
    assert (r["reason"], r["n"], r["vehicle_ident"]) == ("payload_too_large", len(big),
                                                         "plow-a")
    assert await conn.fetchval("SELECT seq FROM pings") == 3
