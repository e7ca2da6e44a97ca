"""Device identity in the database: credentials per vehicle, the HTTP token check, and
the question the ingester asks ("is this vehicle an active device of this town?").

Secrets are printed once when issued and never stored in the clear: the HTTP token as an
argon2id hash, the MQTT password only as the broker's own hash (see app/brokerauth.py).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import secrets
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import asyncpg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from app.errors import InvalidInput, NotFound, PlowshareError

# Same rules as the database CHECKs on towns.slug and vehicles.ident.
SLUG = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
IDENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
# "pst_" + 16 hex (the public id used to find the row) + "_" + 43 url-safe (256 random bits)
TOKEN = re.compile(r"^pst_([0-9a-f]{16})_[A-Za-z0-9_-]{43}$")

# argon2-cffi's defaults are RFC 9106's low-memory profile (argon2id, t=3, 64 MiB, p=4).
_hasher = PasswordHasher()


class DeviceExists(PlowshareError):
    """The vehicle already has live credentials."""


@dataclass(frozen=True, slots=True)
class IssuedCredentials:
    """What `plowshare vehicles add` prints once. Nothing here is stored as it is."""

    town: str
    ident: str
    label: str | None
    mqtt_username: str
    mqtt_password: str | None  # None when issued without a broker account
    http_token: str


@dataclass(frozen=True, slots=True)
class DeviceRef:
    """The device an HTTP token belongs to."""

    credential_id: int
    town_id: int
    town: str
    vehicle_id: int
    ident: str
    mqtt_username: str
    revoked: bool


@dataclass(frozen=True, slots=True)
class DeviceRow:
    ident: str
    label: str | None
    mqtt_username: str | None
    status: str  # active | revoked | none
    mqtt_enabled: bool | None
    issued_at: datetime | None
    revoked_at: datetime | None


def mqtt_username(town: str, ident: str) -> str:
    # Slugs never contain '.', so the first '.' splits the name back unambiguously.
    return f"{town}.{ident}"


def new_http_token() -> tuple[str, str]:
    """(token, token_id)."""
    token_id = secrets.token_hex(8)
    return f"pst_{token_id}_{secrets.token_urlsafe(32)}", token_id


def token_id_of(token: str) -> str | None:
    m = TOKEN.match(token)
    return m.group(1) if m else None


def hash_token(token: str) -> str:
    return _hasher.hash(token)


def verify_token_hash(token_hash: str, token: str) -> bool:
    try:
        return _hasher.verify(token_hash, token)
    except (VerificationError, InvalidHashError):
        return False


def _check_names(town: str, ident: str) -> None:
    if not SLUG.match(town):
        raise InvalidInput(f"bad town slug {town!r}")
    if not IDENT.match(ident):
        raise InvalidInput(f"bad vehicle id {ident!r}: letters, digits, '_', '.', '-' (≤ 64)")


async def _town_id(conn: asyncpg.Connection, town: str) -> int:
    town_id: int | None = await conn.fetchval("SELECT id FROM towns WHERE slug = $1", town)
    if town_id is None:
        raise NotFound(f"no town '{town}': add it with `plowshare towns add`")
    return town_id


async def issue(
    conn: asyncpg.Connection, town: str, ident: str, label: str | None, *,
    with_mqtt: bool = True,
) -> IssuedCredentials:
    """Create the vehicle if needed and give it new credentials. Run inside the caller's
    transaction: the caller installs the broker account before committing."""
    _check_names(town, ident)
    town_id = await _town_id(conn, town)
    vehicle_id: int = await conn.fetchval(
        """INSERT INTO vehicles (town_id, ident, label) VALUES ($1, $2, $3)
           ON CONFLICT (town_id, ident)
           DO UPDATE SET label = coalesce(EXCLUDED.label, vehicles.label)
           RETURNING id""", town_id, ident, label)
    # DO UPDATE has locked the vehicle row until commit, so a concurrent `add` of the same
    # vehicle waits here and then sees our credential (the unique index is the backstop).
    if await conn.fetchval(
            "SELECT 1 FROM device_credentials WHERE vehicle_id = $1 AND revoked_at IS NULL",
            vehicle_id):
        raise DeviceExists(f"{town}/{ident} already has credentials: revoke them first, "
                           "or use `plowshare vehicles rotate`")
    token, token_id = new_http_token()
    username = mqtt_username(town, ident)
    token_hash = await asyncio.to_thread(hash_token, token)
    await conn.execute(
        """INSERT INTO device_credentials (town_id, vehicle_id, mqtt_username, mqtt_enabled,
                                           token_id, token_hash)
           VALUES ($1, $2, $3, $4, $5, $6)""",
        town_id, vehicle_id, username, with_mqtt, token_id, token_hash)
    # A new acknowledgement epoch (see migrations/0034_ack_epoch.sql).
    await conn.execute(
        """INSERT INTO device_acks (vehicle_id, town_id, acked_seq, newest_fix, since)
           VALUES ($1, $2, -1, NULL, now())
           ON CONFLICT (vehicle_id) DO UPDATE
              SET acked_seq = -1, newest_fix = NULL, since = now(), updated_at = now()""",
        vehicle_id, town_id)
    stored_label: str | None = await conn.fetchval(
        "SELECT label FROM vehicles WHERE id = $1", vehicle_id)
    return IssuedCredentials(
        town=town, ident=ident, label=stored_label, mqtt_username=username,
        mqtt_password=secrets.token_urlsafe(32) if with_mqtt else None, http_token=token)


async def revoke(conn: asyncpg.Connection, town: str, ident: str) -> tuple[str, bool]:
    """Mark the vehicle's live credentials revoked. Returns (mqtt username, whether there
    was anything live). Idempotent: revoking twice is not an error."""
    _check_names(town, ident)
    town_id = await _town_id(conn, town)
    vehicle_id: int | None = await conn.fetchval(
        "SELECT id FROM vehicles WHERE town_id = $1 AND ident = $2", town_id, ident)
    if vehicle_id is None:
        raise NotFound(f"no vehicle '{ident}' in '{town}'")
    revoked = await conn.fetch(
        """UPDATE device_credentials SET revoked_at = now()
            WHERE vehicle_id = $1 AND revoked_at IS NULL RETURNING id""", vehicle_id)
    return mqtt_username(town, ident), bool(revoked)


async def list_devices(conn: asyncpg.Connection, town: str) -> list[DeviceRow]:
    town_id = await _town_id(conn, town)
    rows = await conn.fetch(
        """SELECT v.ident, v.label, c.mqtt_username, c.mqtt_enabled, c.created_at,
                  c.revoked_at
             FROM vehicles v
             LEFT JOIN LATERAL (
                 SELECT * FROM device_credentials d WHERE d.vehicle_id = v.id
                  ORDER BY (d.revoked_at IS NULL) DESC, d.created_at DESC LIMIT 1) c ON true
            WHERE v.town_id = $1
            ORDER BY v.ident""", town_id)
    return [
        DeviceRow(
            ident=r["ident"], label=r["label"], mqtt_username=r["mqtt_username"],
            status=("none" if r["created_at"] is None
                    else "revoked" if r["revoked_at"] is not None else "active"),
            mqtt_enabled=r["mqtt_enabled"], issued_at=r["created_at"],
            revoked_at=r["revoked_at"])
        for r in rows
    ]


# -- the ingester's check ------------------------------------------------------------------
async def is_active_device(conn: asyncpg.Connection, town_id: int, ident: str) -> bool:
    """True when the vehicle exists in that town and has live (unrevoked) credentials."""
    return bool(await conn.fetchval(
        """SELECT 1 FROM device_credentials c JOIN vehicles v ON v.id = c.vehicle_id
            WHERE v.town_id = $1 AND v.ident = $2 AND c.revoked_at IS NULL""",
        town_id, ident))


async def active_devices(
    conn: asyncpg.Connection, keys: Iterable[tuple[int, str]]
) -> set[tuple[int, str]]:
    """The (town_id, ident) pairs among ``keys`` that are active devices: one query for a
    whole batch. Not cached, so a revocation counts from the next batch on."""
    pairs = sorted(set(keys))
    if not pairs:
        return set()
    rows = await conn.fetch(
        """SELECT v.town_id, v.ident
             FROM unnest($1::bigint[], $2::text[]) AS k(town_id, ident)
             JOIN vehicles v ON v.town_id = k.town_id AND v.ident = k.ident
             JOIN device_credentials c ON c.vehicle_id = v.id AND c.revoked_at IS NULL""",
        [p[0] for p in pairs], [p[1] for p in pairs])
    return {(r["town_id"], r["ident"]) for r in rows}


# -- HTTP tokens -----------------------------------------------------------------------------
class TokenVerifier:
    """Checks HTTP device tokens.

    Every request reads the credential row (one index lookup), so a revocation counts from
    the next request. The argon2id verification (tens of milliseconds, 64 MiB) is done
    once per token and process: afterwards a SHA-256 of the token, kept in memory, stands
    for it. Few verifications run at once, so requests with made-up secrets cannot take
    all the memory.
    """

    def __init__(self, cache_size: int = 10_000, concurrent_hashes: int = 2) -> None:
        self._known: OrderedDict[str, tuple[int, bytes]] = OrderedDict()
        self._cache_size = cache_size
        self._hashing = asyncio.Semaphore(concurrent_hashes)

    async def verify(self, conn: asyncpg.Connection, token: str) -> DeviceRef | None:
        """The token's device (check ``revoked``), or None for a token that is not one."""
        token_id = token_id_of(token)
        if token_id is None:
            return None
        row = await conn.fetchrow(
            """SELECT c.id, c.token_hash, c.revoked_at IS NOT NULL AS revoked,
                      c.mqtt_username, v.id AS vehicle_id, v.ident, t.id AS town_id,
                      t.slug
                 FROM device_credentials c
                 JOIN vehicles v ON v.id = c.vehicle_id
                 JOIN towns t ON t.id = v.town_id
                WHERE c.token_id = $1""", token_id)
        if row is None:
            return None
        digest = hashlib.sha256(token.encode()).digest()
        known = self._known.get(token_id)
        if known is not None and known[0] == row["id"] and hmac.compare_digest(known[1],
                                                                              digest):
            self._known.move_to_end(token_id)
        else:
            async with self._hashing:
                ok = await asyncio.to_thread(verify_token_hash, row["token_hash"], token)
            if not ok:
                return None
            self._known[token_id] = (row["id"], digest)
            while len(self._known) > self._cache_size:
                self._known.popitem(last=False)
        return DeviceRef(credential_id=row["id"], town_id=row["town_id"], town=row["slug"],
                         vehicle_id=row["vehicle_id"], ident=row["ident"],
                         mqtt_username=row["mqtt_username"], revoked=row["revoked"])
