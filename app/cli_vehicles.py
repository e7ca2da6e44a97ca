"""``plowshare vehicles …`` (device credentials) and ``plowshare broker …`` (the broker's
accounts). Wired into app/cli.py with ``cli_vehicles.register(sub)``.

The database is the register of who may send as which vehicle; the broker holds the MQTT
accounts. They change together: a new credential is committed only after the broker has
the account, and a revocation is committed first (HTTP and the ingester refuse the device
from then on) and then removed from the broker, which disconnects the device. If the broker
step fails, the command says so and is safe to run again.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
from pathlib import Path
from typing import Any

import asyncpg

from app import devices
from app.brokerauth import (
    BrokerAdminSettings,
    BrokerAuthError,
    DynsecClient,
    device_topics,
    write_bootstrap_file,
)
from app.db import connect
from app.devices import IssuedCredentials
from app.settings import Settings


def register(sub: Any) -> None:
    """Add the ``vehicles`` and ``broker`` commands to the CLI's sub-parsers."""
    v = sub.add_parser("vehicles", help="vehicles and their device credentials"
                       ).add_subparsers(required=True, metavar="ACTION")
    add = v.add_parser("add", help="register a vehicle and print its credentials once")
    _vehicle_args(add)
    add.add_argument("--label")
    add.set_defaults(func=_add)
    rot = v.add_parser("rotate", help="revoke a vehicle's credentials and issue new ones")
    _vehicle_args(rot)
    rot.set_defaults(func=_rotate)
    rev = v.add_parser("revoke", help="revoke a vehicle's credentials (disconnects it)")
    _vehicle_args(rev)
    rev.set_defaults(func=_revoke)
    ls = v.add_parser("list", help="list a town's vehicles and their credential status")
    ls.add_argument("--town", required=True)
    ls.set_defaults(func=_list)

    b = sub.add_parser("broker", help="the MQTT broker's accounts (dynamic security)"
                       ).add_subparsers(required=True, metavar="ACTION")
    bf = b.add_parser("bootstrap-file",
                      help="write the dynamic-security file before the broker first starts")
    bf.add_argument("path", type=Path)
    bf.set_defaults(func=_bootstrap_file)
    bi = b.add_parser("init", help="deny by default, create the ingester's account, remove "
                                   "accounts of revoked devices (safe to re-run)")
    bi.set_defaults(func=_broker_init)


def _vehicle_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--town", required=True)
    p.add_argument("--id", required=True, dest="ident", help="vehicle id")
    p.add_argument("--no-broker", action="store_true",
                   help="leave the MQTT broker alone (HTTP token only)")


# -- actions, callable from tests ------------------------------------------------------------
async def add_vehicle(
    conn: asyncpg.Connection, admin: DynsecClient | None, prefix: str, town: str,
    ident: str, label: str | None,
) -> IssuedCredentials:
    return await _issue(conn, admin, prefix, town, ident, label, rotate=False)


async def rotate_vehicle(
    conn: asyncpg.Connection, admin: DynsecClient | None, prefix: str, town: str, ident: str,
) -> IssuedCredentials:
    return await _issue(conn, admin, prefix, town, ident, None, rotate=True)


async def _issue(
    conn: asyncpg.Connection, admin: DynsecClient | None, prefix: str, town: str,
    ident: str, label: str | None, *, rotate: bool,
) -> IssuedCredentials:
    touched_broker = False
    try:
        async with conn.transaction():
            if rotate:
                await devices.revoke(conn, town, ident)
            creds = await devices.issue(conn, town, ident, label, with_mqtt=admin is not None)
            if admin is not None:
                assert creds.mqtt_password is not None
                touched_broker = True
                # Replaces the old account on rotate, which disconnects the device.
                await asyncio.to_thread(admin.add_device, creds.mqtt_username,
                                        creds.mqtt_password, prefix=prefix, town=town,
                                        ident=ident, label=creds.label)
    except BaseException:
        if touched_broker and admin is not None:
            # Not committed: an account the database does not know must not stay usable.
            with contextlib.suppress(BrokerAuthError):
                await asyncio.to_thread(admin.remove_device,
                                        devices.mqtt_username(town, ident))
        raise
    return creds


async def revoke_vehicle(
    conn: asyncpg.Connection, admin: DynsecClient | None, town: str, ident: str
) -> bool:
    """Returns whether live credentials were revoked (False: already revoked; the broker
    account is removed again anyway, in case an earlier run could not)."""
    async with conn.transaction():
        username, was_live = await devices.revoke(conn, town, ident)
    if admin is not None:
        try:
            await asyncio.to_thread(admin.remove_device, username)
        except BrokerAuthError as exc:
            raise BrokerAuthError(
                f"{town}/{ident} is revoked in the database (HTTP and the ingester refuse "
                f"it), but the broker was not updated: {exc}. Run the command again.") from exc
    return was_live


async def init_broker(
    conn: asyncpg.Connection, admin: DynsecClient, settings: Settings
) -> list[str]:
    """Secure defaults, the ingester's account, and no account left for a revoked device.
    Returns what it did, for the operator."""
    done: list[str] = []
    await asyncio.to_thread(admin.secure_defaults)
    done.append("default access: deny publish, receive and subscribe")
    mqtt = settings.mqtt
    if mqtt.username and mqtt.password:
        await asyncio.to_thread(admin.ensure_ingester, mqtt.username,
                                mqtt.password.get_secret_value(), mqtt.topic_prefix)
        done.append(f"ingester account '{mqtt.username}' may read positions, write acks")
    else:
        done.append("no ingester account: set PLOWSHARE_MQTT_USERNAME / _PASSWORD")
    stale = await conn.fetch(
        """SELECT DISTINCT c.mqtt_username FROM device_credentials c
            WHERE c.revoked_at IS NOT NULL AND NOT EXISTS (
                  SELECT 1 FROM device_credentials a
                   WHERE a.mqtt_username = c.mqtt_username AND a.revoked_at IS NULL)""")
    for r in stale:
        await asyncio.to_thread(admin.remove_device, r["mqtt_username"])
    done.append(f"accounts of revoked devices removed (if present): {len(stale)}")
    live = {r["mqtt_username"] for r in await conn.fetch(
        "SELECT mqtt_username FROM device_credentials "
        "WHERE revoked_at IS NULL AND mqtt_enabled")}
    missing = sorted(live - set(await asyncio.to_thread(admin.client_names)))
    if missing:
        done.append("active devices without a broker account (the broker's file was lost? "
                    "use `plowshare vehicles rotate`): " + ", ".join(missing))
    return done


def format_credentials(creds: IssuedCredentials, prefix: str) -> str:
    t = device_topics(prefix, creds.town, creds.ident)
    name = f"{creds.town}/{creds.ident}" + (f" ({creds.label})" if creds.label else "")
    lines = [f"vehicle {name}: credentials issued. They are shown only now; "
             "plowshare keeps only hashes.", ""]
    if creds.mqtt_password is not None:
        lines += [
            f"  MQTT username   {creds.mqtt_username}",
            f"  MQTT password   {creds.mqtt_password}",
            f"  MQTT client id  {creds.mqtt_username}   (required: the broker refuses any "
            "other id for this account)",
            f"  publish to      {t.position}   (OwnTracks app: {t.owntracks})",
            f"  read acks from  {t.ack}",
        ]
    else:
        lines.append("  MQTT            none (issued with --no-broker)")
    lines += [
        f"  HTTP token      {creds.http_token}",
        "  OsmAnd / Traccar Client URL:  https://<server>/api/devices/osmand"
        f"?token={creds.http_token}",
        "  (or send the token as 'Authorization: Bearer <token>')",
    ]
    return "\n".join(lines)


# -- CLI glue ------------------------------------------------------------------------------------
def _admin(settings: Settings, args: argparse.Namespace) -> DynsecClient | None:
    if getattr(args, "no_broker", False):
        return None
    return DynsecClient.from_settings(settings.mqtt, BrokerAdminSettings())


async def _with_conn_and_admin(settings: Settings, args: argparse.Namespace,
                               work: Any) -> int:
    conn = await connect(settings.database)
    try:
        admin = _admin(settings, args)
        if admin is None:
            return int(await work(conn, None))
        with admin:
            return int(await work(conn, admin))
    finally:
        await conn.close()


def _add(settings: Settings, args: argparse.Namespace) -> int:
    prefix = settings.mqtt.topic_prefix

    async def work(conn: asyncpg.Connection, admin: DynsecClient | None) -> int:
        creds = await add_vehicle(conn, admin, prefix, args.town, args.ident, args.label)
        print(format_credentials(creds, prefix))
        return 0

    return asyncio.run(_with_conn_and_admin(settings, args, work))


def _rotate(settings: Settings, args: argparse.Namespace) -> int:
    prefix = settings.mqtt.topic_prefix

    async def work(conn: asyncpg.Connection, admin: DynsecClient | None) -> int:
        creds = await rotate_vehicle(conn, admin, prefix, args.town, args.ident)
        print(format_credentials(creds, prefix))
        return 0

    return asyncio.run(_with_conn_and_admin(settings, args, work))


def _revoke(settings: Settings, args: argparse.Namespace) -> int:
    async def work(conn: asyncpg.Connection, admin: DynsecClient | None) -> int:
        live = await revoke_vehicle(conn, admin, args.town, args.ident)
        print(f"vehicle {args.town}/{args.ident}: "
              + ("credentials revoked" if live else "had no live credentials")
              + ("" if admin is None else "; broker account removed (disconnected)"))
        return 0

    return asyncio.run(_with_conn_and_admin(settings, args, work))


def _list(settings: Settings, args: argparse.Namespace) -> int:
    async def run() -> int:
        conn = await connect(settings.database)
        try:
            rows = await devices.list_devices(conn, args.town)
        finally:
            await conn.close()
        print("id\tlabel\tstatus\tmqtt username\tissued\trevoked")
        for r in rows:
            mqtt = (r.mqtt_username or "-") + ("" if r.mqtt_enabled in (None, True)
                                               else " (no broker)")
            print("\t".join([
                r.ident, r.label or "-", r.status, mqtt,
                r.issued_at.isoformat(timespec="seconds") if r.issued_at else "-",
                r.revoked_at.isoformat(timespec="seconds") if r.revoked_at else "-"]))
        return 0

    return asyncio.run(run())


def _bootstrap_file(settings: Settings, args: argparse.Namespace) -> int:
    admin = BrokerAdminSettings()
    username = admin.username or "plowshare-admin"
    password = (admin.password.get_secret_value() if admin.password
                else getpass.getpass(f"password for broker admin '{username}': "))
    if len(password) < 12:
        raise BrokerAuthError("use a broker admin password of at least 12 characters")
    write_bootstrap_file(args.path, username, password)
    print(f"wrote {args.path} (admin '{username}', mode 0600). Give it to the broker's "
          "user (uid 1883 in the eclipse-mosquitto image): the plugin rewrites it.")
    return 0


def _broker_init(settings: Settings, args: argparse.Namespace) -> int:
    async def work(conn: asyncpg.Connection, admin: DynsecClient | None) -> int:
        assert admin is not None
        for line in await init_broker(conn, admin, settings):
            print(line)
        return 0

    return asyncio.run(_with_conn_and_admin(settings, args, work))
