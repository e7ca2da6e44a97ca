"""What the public may see of a town's fleet: the per-town rules in ``town_settings``,
the storm the public map shows, and the two decisions made from them (a vehicle's public
label, and whether it is idle). The dispatcher feed applies none of this."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from app.errors import NotFound
from app.queries import storm_shown

# Unambiguous on a phone in the sun: no 0/O, 1/I/L, 2/Z, 5/S, 8/B.
_ALPHABET = "ACDEFHJKMNPRTUVWXY34679"
# Slower than this with blade up and spreader off counts as parked.
PARKED_SPEED_MPS = 0.5


@dataclass(frozen=True)
class TownRules:
    town_id: int
    slug: str
    name: str
    delay_s: int
    off_storm_delay_s: int
    pseudonymous: bool
    hide_idle: bool
    idle_after_s: int
    bins_min: tuple[int, ...]
    base_style_url: str | None
    salt: bytes
    has_depots: bool
    storm: dict[str, Any] | None  # as app.queries.storm_shown gives it

    @property
    def storm_key(self) -> int:
        """segment_status.storm_key of the storm shown (0: service outside storms)."""
        return int(self.storm["id"]) if self.storm else 0

    @property
    def storm_running(self) -> bool:
        return bool(self.storm and self.storm["running"])

    @property
    def delay(self) -> int:
        """Seconds the public view lags behind; the storm decides which setting holds."""
        return self.delay_s if self.storm_running else self.off_storm_delay_s

    def public_id(self, ident: str) -> str:
        """A vehicle's public name: stable within a storm, unlinkable across storms (so a
        driver's shifts cannot be followed from one storm to the next), and meaningless
        without the town's secret salt."""
        if not self.pseudonymous:
            return ident
        digest = hmac.new(self.salt, f"{self.storm_key}:{ident}".encode(),
                          hashlib.sha256).digest()
        n = int.from_bytes(digest[:8], "big")
        chars = []
        for _ in range(3):
            n, r = divmod(n, len(_ALPHABET))
            chars.append(_ALPHABET[r])
        return "".join(chars)

    def public_label(self, ident: str, label: str | None) -> str:
        if not self.pseudonymous:
            return label or ident
        return f"Plow {self.public_id(ident)}"

    def config(self) -> dict[str, Any]:
        """The rules a public page needs to draw what it receives."""
        return {
            "delay_s": self.delay,
            "idle_after_s": self.idle_after_s if self.hide_idle else None,
            "pseudonymous": self.pseudonymous,
            "bins_min": list(self.bins_min),
            "base_style_url": self.base_style_url,
        }


def is_idle(rules: TownRules, fix_time: datetime, speed: float | None, plow: bool | None,
            spreader: bool | None, public_now: datetime) -> bool:
    """Silent for idle_after_s, or standing still with nothing working. A plow waiting at
    a red light with its blade down is working and stays on the map."""
    if not rules.hide_idle:
        return False
    if public_now - fix_time > timedelta(seconds=rules.idle_after_s):
        return True
    working = plow is True or spreader is True
    return not working and speed is not None and speed < PARKED_SPEED_MPS


_RULES = """
SELECT t.id, t.slug, t.name, s.delay_s, s.off_storm_delay_s, s.pseudonymous, s.hide_idle,
       s.idle_after_s, s.bins_min, s.base_style_url, s.pseudonym_salt,
       EXISTS (SELECT 1 FROM depots d WHERE d.town_id = t.id) AS has_depots
  FROM towns t JOIN town_settings s ON s.town_id = t.id
 WHERE t.slug = $1
"""


async def load_rules(conn: asyncpg.Connection, slug: str) -> TownRules:
    row = await conn.fetchrow(_RULES, slug)
    if row is None:
        raise NotFound(f"no town '{slug}'")
    return TownRules(
        town_id=row["id"], slug=row["slug"], name=row["name"], delay_s=row["delay_s"],
        off_storm_delay_s=row["off_storm_delay_s"], pseudonymous=row["pseudonymous"],
        hide_idle=row["hide_idle"], idle_after_s=row["idle_after_s"],
        bins_min=tuple(row["bins_min"]), base_style_url=row["base_style_url"],
        salt=row["pseudonym_salt"].bytes, has_depots=row["has_depots"],
        storm=await storm_shown(conn, row["id"]),
    )
