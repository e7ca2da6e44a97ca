"""Who may do what on the MQTT broker: Mosquitto's dynamic-security plugin, run by plowshare.

Why the dynamic-security plugin and not a password file + ACL file reloaded with SIGHUP:

- changes go over MQTT (``$CONTROL/dynamic-security/v1``), so the CLI needs no shell or
  file access on the broker host and no signal to another container;
- a disabled or deleted client is disconnected at once ("administrative action"), so a
  revoked device is cut off without restarting the broker;
- the broker hashes each password itself (salted PBKDF2-SHA512) in its own JSON file;
  plowshare never stores the MQTT password. The low iteration count the plugin uses for
  clients made over ``$CONTROL`` does not matter for device passwords: they are 256-bit
  random secrets, which no amount of hashing speed lets anyone guess.

Layout: one role per device, allowing exactly its own topics; one role for the ingester;
every default access *denied* (the plugin's default lets any client receive anything it
managed to subscribe to). Each device account is pinned to its own client id: without it,
an authenticated device could connect with the ingester's client id, kick the ingester
and take over its persistent session (checked on Mosquitto 2.0.11).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import ssl
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.errors import PlowshareError

CONTROL_TOPIC = "$CONTROL/dynamic-security/v1"
RESPONSE_TOPIC = CONTROL_TOPIC + "/response"
ADMIN_ROLE = "plowshare-admin"
INGESTER_ROLE = "plowshare-ingester"
OWNTRACKS_PREFIX = "owntracks"
# OWASP's figure for PBKDF2-HMAC-SHA512. Used for the admin account written by
# write_bootstrap_file: unlike device secrets, its password may be chosen by a person.
ADMIN_PBKDF2_ITERATIONS = 210_000

# Errors the plugin answers when the thing to remove is already gone: removal is idempotent.
_GONE = frozenset({"Client not found", "Role not found"})


class BrokerAdminSettings(BaseSettings):
    """The broker account plowshare uses to manage devices (``PLOWSHARE_BROKER_ADMIN_*``).
    Where the broker is (host, port, TLS, CA) comes from the MQTT settings."""

    model_config = SettingsConfigDict(env_prefix="PLOWSHARE_BROKER_ADMIN_", extra="ignore")

    username: str | None = None
    password: SecretStr | None = None
    timeout_s: float = 10.0

    @property
    def configured(self) -> bool:
        return bool(self.username and self.password)


class BrokerAuthError(PlowshareError):
    """The broker could not be reached, refused the admin login, or refused a command."""


@dataclass(frozen=True, slots=True)
class DeviceTopics:
    position: str
    owntracks: str
    ack: str


def device_topics(prefix: str, town: str, ident: str) -> DeviceTopics:
    return DeviceTopics(
        position=f"{prefix}/{town}/{ident}/position",
        owntracks=f"{OWNTRACKS_PREFIX}/{town}/{ident}",
        ack=f"{prefix}/{town}/{ident}/ack",
    )


def device_role_name(username: str) -> str:
    return f"plowshare-device:{username}"


def _acl(acltype: str, topic: str) -> dict[str, Any]:
    return {"acltype": acltype, "topic": topic, "allow": True}


def device_acls(prefix: str, town: str, ident: str) -> list[dict[str, Any]]:
    """A device publishes its positions (native and OwnTracks) and reads its own acks."""
    t = device_topics(prefix, town, ident)
    return [
        _acl("publishClientSend", t.position),
        _acl("publishClientSend", t.owntracks),
        # Literal: the device may subscribe to exactly this filter and nothing wider.
        _acl("subscribeLiteral", t.ack),
        _acl("publishClientReceive", t.ack),
    ]


def ingester_acls(prefix: str) -> list[dict[str, Any]]:
    """Read every position topic (also through ``$share/<group>/``, which the plugin checks
    as a filter of its own), write every ack topic."""
    acls: list[dict[str, Any]] = []
    for topic in (f"{prefix}/+/+/position", f"{OWNTRACKS_PREFIX}/+/+"):
        acls += [
            _acl("subscribePattern", topic),
            _acl("subscribePattern", f"$share/+/{topic}"),
            _acl("publishClientReceive", topic),
        ]
    acls.append(_acl("publishClientSend", f"{prefix}/+/+/ack"))
    return acls


DEFAULT_ACL_ACCESS = [
    {"acltype": "publishClientSend", "allow": False},
    {"acltype": "publishClientReceive", "allow": False},
    {"acltype": "subscribe", "allow": False},
    {"acltype": "unsubscribe", "allow": True},
]


def _admin_acls() -> list[dict[str, Any]]:
    control = "$CONTROL/dynamic-security/#"
    # Only the control topics: unlike `mosquitto_ctrl dynsec init`, no read access to '#'.
    return [_acl("publishClientSend", control), _acl("publishClientReceive", control),
            _acl("subscribePattern", control)]


def _pbkdf2_entry(password: str, iterations: int) -> dict[str, Any]:
    # The plugin's format: base64 salt, base64 PBKDF2-HMAC-SHA512 over the *decoded* salt.
    salt = os.urandom(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, 64)
    return {"password": base64.b64encode(digest).decode(),
            "salt": base64.b64encode(salt).decode(), "iterations": iterations}


def bootstrap_document(
    admin_username: str, admin_password: str, *, iterations: int = ADMIN_PBKDF2_ITERATIONS
) -> dict[str, Any]:
    """The plugin's initial state: one admin account that can only manage the plugin, and
    every default access denied. Mosquitto 2.0 cannot create this itself."""
    return {
        "clients": [{
            "username": admin_username,
            "textName": "plowshare broker admin",
            **_pbkdf2_entry(admin_password, iterations),
            "roles": [{"rolename": ADMIN_ROLE}],
        }],
        "groups": [],
        "roles": [{"rolename": ADMIN_ROLE, "acls": _admin_acls()}],
        "defaultACLAccess": {a["acltype"]: a["allow"] for a in DEFAULT_ACL_ACCESS},
    }


def write_bootstrap_file(
    path: Path, admin_username: str, admin_password: str, *,
    iterations: int = ADMIN_PBKDF2_ITERATIONS, overwrite: bool = False,
) -> None:
    """Write the plugin's JSON file before the broker first starts (mode 0600: it holds
    password hashes). Refuses to replace an existing file, which holds every device."""
    doc = bootstrap_document(admin_username, admin_password, iterations=iterations)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if overwrite else os.O_EXCL)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        raise BrokerAuthError(f"{path} exists; it holds the broker's accounts") from None
    with os.fdopen(fd, "w") as f:
        json.dump(doc, f, indent=1)


class DynsecClient:
    """A short admin session on ``$CONTROL/dynamic-security/v1`` (blocking; async callers
    use ``asyncio.to_thread``). Use as a context manager."""

    def __init__(
        self,
        host: str,
        port: int,
        username: str,
        password: str,
        *,
        tls: bool = False,
        ca_file: Path | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        self.host, self.port, self.timeout_s = host, port, timeout_s
        # A fresh id each time: two admin sessions with one id would kick each other.
        client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2,
                             client_id=f"plowshare-admin-{secrets.token_hex(6)}",
                             protocol=mqtt.MQTTv311, clean_session=True)
        client.username_pw_set(username, password)
        if tls:
            client.tls_set_context(ssl.create_default_context(
                cafile=str(ca_file) if ca_file else None))
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        self._client = client
        self._connected = threading.Event()
        self._subscribed = threading.Event()
        self._refused: str | None = None
        self._lock = threading.Lock()
        self._responses: dict[str, dict[str, Any]] = {}
        self._arrived = threading.Condition(self._lock)

    @classmethod
    def from_settings(cls, mqtt_settings: Any, admin: BrokerAdminSettings) -> DynsecClient:
        if not admin.configured:
            raise BrokerAuthError(
                "broker admin credentials are not set: PLOWSHARE_BROKER_ADMIN_USERNAME and "
                "PLOWSHARE_BROKER_ADMIN_PASSWORD (see `plowshare broker bootstrap-file`)")
        assert admin.username is not None and admin.password is not None
        return cls(mqtt_settings.host, mqtt_settings.port, admin.username,
                   admin.password.get_secret_value(), tls=mqtt_settings.tls,
                   ca_file=mqtt_settings.ca_file, timeout_s=admin.timeout_s)

    def __enter__(self) -> DynsecClient:
        try:
            self._client.connect(self.host, self.port, keepalive=30)
        except (OSError, ssl.SSLError) as exc:
            raise BrokerAuthError(f"cannot reach the broker at {self.host}:{self.port}: "
                                  f"{exc}") from exc
        self._client.loop_start()
        try:
            if not self._connected.wait(self.timeout_s):
                raise BrokerAuthError("the broker did not answer the admin login")
            if self._refused:
                raise BrokerAuthError(f"the broker refused the admin login: {self._refused}")
            self._client.subscribe(RESPONSE_TOPIC, qos=1)
            if not self._subscribed.wait(self.timeout_s) or self._refused:
                raise BrokerAuthError("the admin account may not use the dynamic-security "
                                      f"plugin ({self._refused or 'no answer'}); is the "
                                      "plugin loaded?")
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def call(self, commands: Sequence[dict[str, Any]],
             ignore: Iterable[str] = ()) -> list[dict[str, Any]]:
        """Send commands in one message; return their responses in order. Raises on the
        first error not listed in ``ignore``."""
        nonce = secrets.token_hex(8)
        tagged = [{**c, "correlationData": f"{nonce}-{i}"} for i, c in enumerate(commands)]
        keys = [c["correlationData"] for c in tagged]
        info = self._client.publish(CONTROL_TOPIC, json.dumps({"commands": tagged}), qos=1)
        info.wait_for_publish(self.timeout_s)
        with self._arrived:
            ok = self._arrived.wait_for(lambda: all(k in self._responses for k in keys),
                                        self.timeout_s)
            if not ok:
                raise BrokerAuthError("the dynamic-security plugin did not answer")
            responses = [self._responses.pop(k) for k in keys]
        skip = set(ignore)
        for r in responses:
            error = r.get("error")
            if error and error not in skip:
                raise BrokerAuthError(f"broker refused {r.get('command')}: {error}")
        return responses

    # -- plowshare's operations ----------------------------------------------------------
    def secure_defaults(self) -> None:
        self.call([{"command": "setDefaultACLAccess", "acls": DEFAULT_ACL_ACCESS}])

    def ensure_ingester(self, username: str, password: str, prefix: str) -> None:
        """Create or refresh the ingester's role and account (its password is set to the
        given one: the broker keeps only a hash, so it cannot be compared)."""
        acls = ingester_acls(prefix)
        self.call([{"command": "deleteRole", "rolename": INGESTER_ROLE}], ignore=_GONE)
        self.call([{"command": "createRole", "rolename": INGESTER_ROLE, "acls": acls}])
        created = self.call(
            [{"command": "createClient", "username": username, "password": password,
              "textname": "plowshare ingester", "roles": [{"rolename": INGESTER_ROLE}]}],
            ignore={"Client already exists"})
        if created[0].get("error"):
            self.call([
                {"command": "setClientPassword", "username": username, "password": password},
                {"command": "addClientRole", "username": username, "rolename": INGESTER_ROLE},
                {"command": "enableClient", "username": username},
            ])

    def add_device(self, username: str, password: str, *, prefix: str, town: str,
                   ident: str, label: str | None) -> None:
        """Install a device's account, replacing any stale one of the same name (the
        database said it has no active credentials, so a leftover is not in use)."""
        self.remove_device(username)
        role = device_role_name(username)
        self.call([
            {"command": "createRole", "rolename": role,
             "acls": device_acls(prefix, town, ident)},
            {"command": "createClient", "username": username, "password": password,
             "clientid": username, "textname": label or username,
             "roles": [{"rolename": role}]},
        ])

    def remove_device(self, username: str) -> None:
        """Delete the account (the broker disconnects it at once) and its role."""
        self.call([{"command": "deleteClient", "username": username},
                   {"command": "deleteRole", "rolename": device_role_name(username)}],
                  ignore=_GONE)

    def client_names(self) -> list[str]:
        [r] = self.call([{"command": "listClients", "verbose": False}])
        names: list[str] = r.get("data", {}).get("clients", [])
        return names

    # -- paho callbacks --------------------------------------------------------------------
    def _on_connect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            self._refused = str(reason)
        self._connected.set()

    def _on_subscribe(self, _c: mqtt.Client, _u: Any, _mid: int, reasons: Any,
                      _p: Any) -> None:
        if any(r.is_failure for r in reasons):
            self._refused = "subscription to the response topic refused"
        self._subscribed.set()

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            doc = json.loads(msg.payload)
        except ValueError:
            return
        with self._arrived:
            for r in doc.get("responses", []):
                key = r.get("correlationData")
                if isinstance(key, str):
                    self._responses[key] = r
            self._arrived.notify_all()
