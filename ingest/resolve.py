"""Resolve the town slug and vehicle ident of each position to database ids.

Caches are per ingester instance (no module state), so several workers can run side by
side. A town that does not exist is remembered as missing only briefly, so a town created
while the ingester runs starts being accepted within seconds.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import asyncpg

_MISSING_TTL_S = 10.0


@dataclass(frozen=True, slots=True)
class VehicleRef:
    id: int
    label: str | None


@dataclass
class Resolver:
    auto_register: bool
    _towns: dict[str, int] = field(default_factory=dict)
    _missing_towns: dict[str, float] = field(default_factory=dict)
    _vehicles: dict[tuple[int, str], VehicleRef] = field(default_factory=dict)

    async def town_id(self, conn: asyncpg.Connection, slug: str) -> int | None:
        if slug in self._towns:
            return self._towns[slug]
        missing_since = self._missing_towns.get(slug)
        if missing_since is not None and time.monotonic() - missing_since < _MISSING_TTL_S:
            return None
        town_id: int | None = await conn.fetchval("SELECT id FROM towns WHERE slug = $1", slug)
        if town_id is None:
            self._missing_towns[slug] = time.monotonic()
        else:
            self._missing_towns.pop(slug, None)
            self._towns[slug] = town_id
        return town_id

    async def vehicle(
        self, conn: asyncpg.Connection, town_id: int, ident: str
    ) -> VehicleRef | None:
        key = (town_id, ident)
        ref = self._vehicles.get(key)
        if ref is not None:
            return ref
        row = await conn.fetchrow(
            "SELECT id, label FROM vehicles WHERE town_id = $1 AND ident = $2", town_id, ident
        )
        if row is None and self.auto_register:
            # DO UPDATE (a no-op) rather than DO NOTHING so RETURNING also answers when a
            # concurrent worker registered the vehicle first.
            row = await conn.fetchrow(
                """INSERT INTO vehicles (town_id, ident) VALUES ($1, $2)
                   ON CONFLICT (town_id, ident) DO UPDATE SET ident = EXCLUDED.ident
                   RETURNING id, label""",
                town_id,
                ident,
            )
        if row is None:
            return None
        ref = VehicleRef(row["id"], row["label"])
        self._vehicles[key] = ref
        return ref

    def forget(self) -> None:
        """Drop cached ids, e.g. after a transaction that registered vehicles rolled back."""
        self._towns.clear()
        self._missing_towns.clear()
        self._vehicles.clear()
