"""Dispatcher resources: storms, the town's public rules and depots, residents' reports.

Protected by a shared bearer token when ``PLOWSHARE_PUBLIC_DISPATCH_TOKEN`` is set; open
otherwise (development), until dispatcher accounts arrive. Changes that alter what the
public sees are announced on the live channel, so every server's public feed re-reads.
"""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import Annotated, Any, Literal

import asyncpg
from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from app import live, queries
from app.deps import PoolDep
from app.errors import InvalidInput, NotFound
from app.public_deps import DispatcherDep, RulesDep
from app.reports import list_reports
from app.storms import Storm, end_storm, start_storm

router = APIRouter(prefix="/api/dispatch/towns", tags=["dispatch"])

Slug = Annotated[str, Path(pattern=r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")]
# Ids are bigint: anything past 2^63-1 is a client error, not a database one.
RowId = Annotated[int, Path(ge=1, le=2**63 - 1)]


class StormIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, max_length=200)


class PublicRulesIn(BaseModel):
    """The town's public-view rules; fields left out keep their value."""

    model_config = ConfigDict(extra="forbid")
    delay_s: int | None = Field(None, ge=0, le=3600)
    off_storm_delay_s: int | None = Field(None, ge=0, le=3600)
    pseudonymous: bool | None = None
    hide_idle: bool | None = None
    idle_after_s: int | None = Field(None, ge=30, le=86400)
    bins_min: list[int] | None = Field(None, min_length=1, max_length=8)
    base_style_url: str | None = Field(None, max_length=500, pattern=r"^/[^/]")

    @model_validator(mode="after")
    def _no_nulls(self) -> PublicRulesIn:
        # Leaving a field out keeps its value; null would mean "no value", which only the
        # base map style may have (found by the API fuzz run: it reached a NOT NULL column).
        nulls = sorted(f for f in self.model_fields_set
                       if f != "base_style_url" and getattr(self, f) is None)
        if nulls:
            raise ValueError(f"{', '.join(nulls)} cannot be null; leave it out to keep it")
        return self

    @field_validator("bins_min")
    @classmethod
    def _increasing(cls, v: list[int] | None) -> list[int] | None:
        if v is not None and (v[0] <= 0 or any(b <= a for a, b in itertools.pairwise(v))):
            raise ValueError("bins must be positive minutes in increasing order")
        return v


class DepotIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    geometry: dict[str, Any] = Field(description="GeoJSON Point, Polygon or MultiPolygon")
    radius_m: float = Field(0, ge=0, le=5000)


async def _announce(conn: asyncpg.Connection, slug: str, kind: str) -> None:
    await live.notify(conn, live.encode_messages(slug, kind, [{}]))


def _storm(s: Storm) -> dict[str, Any]:
    return {"id": s.id, "town": s.town, "name": s.name, "started_at": s.started_at.isoformat(),
            "ended_at": s.ended_at.isoformat() if s.ended_at else None,
            "running": s.ended_at is None}


@router.post("/{slug}/storms/start", status_code=201)
async def storm_start(slug: Slug, body: StormIn, pool: PoolDep, rules: RulesDep,
                      _auth: DispatcherDep) -> dict[str, Any]:
    """Start a storm: the public map's status counts from now."""
    async with pool.acquire() as conn, conn.transaction():
        storm = await start_storm(conn, slug, body.name)
        await _announce(conn, slug, "storm")
    rules.forget(slug)
    return _storm(storm)


@router.post("/{slug}/storms/end")
async def storm_end(slug: Slug, pool: PoolDep, rules: RulesDep,
                    _auth: DispatcherDep) -> dict[str, Any]:
    """End the running storm; the public map keeps showing it, labelled as ended."""
    async with pool.acquire() as conn, conn.transaction():
        storm = await end_storm(conn, slug)
        await _announce(conn, slug, "storm")
    rules.forget(slug)
    return _storm(storm)


_RULE_COLUMNS = ("delay_s", "off_storm_delay_s", "pseudonymous", "hide_idle", "idle_after_s",
                 "bins_min", "base_style_url")

_GET_RULES = """
SELECT s.delay_s, s.off_storm_delay_s, s.pseudonymous, s.hide_idle, s.idle_after_s,
       s.bins_min, s.base_style_url, s.updated_at
  FROM town_settings s JOIN towns t ON t.id = s.town_id WHERE t.slug = $1"""

# Each column keeps its value unless the matching flag says it was sent (a sent null
# clears base_style_url).
_SET_RULES = """
UPDATE town_settings s SET
    delay_s = CASE WHEN $2 THEN $3 ELSE s.delay_s END,
    off_storm_delay_s = CASE WHEN $4 THEN $5 ELSE s.off_storm_delay_s END,
    pseudonymous = CASE WHEN $6 THEN $7 ELSE s.pseudonymous END,
    hide_idle = CASE WHEN $8 THEN $9 ELSE s.hide_idle END,
    idle_after_s = CASE WHEN $10 THEN $11 ELSE s.idle_after_s END,
    bins_min = CASE WHEN $12 THEN $13::integer[] ELSE s.bins_min END,
    base_style_url = CASE WHEN $14 THEN $15 ELSE s.base_style_url END,
    updated_at = now()
  FROM towns t WHERE t.id = s.town_id AND t.slug = $1"""


async def _rules_out(conn: asyncpg.Connection, slug: str) -> dict[str, Any]:
    row = await conn.fetchrow(_GET_RULES, slug)
    if row is None:
        raise NotFound(f"no town '{slug}'")
    return {**{c: row[c] for c in _RULE_COLUMNS}, "updated_at": row["updated_at"].isoformat()}


@router.get("/{slug}/public-rules")
async def get_public_rules(slug: Slug, pool: PoolDep, _auth: DispatcherDep) -> dict[str, Any]:
    async with pool.acquire() as conn:
        return await _rules_out(conn, slug)


@router.patch("/{slug}/public-rules")
async def set_public_rules(slug: Slug, body: PublicRulesIn, pool: PoolDep, rules: RulesDep,
                           _auth: DispatcherDep) -> dict[str, Any]:
    """Change what the public map shows (delay, pseudonyms, idle hiding, colour bins)."""
    sent = body.model_fields_set
    args: list[Any] = []
    for column in _RULE_COLUMNS:
        args += [column in sent, getattr(body, column)]
    async with pool.acquire() as conn, conn.transaction():
        await queries.town_id(conn, slug)
        await conn.execute(_SET_RULES, slug, *args)
        await _announce(conn, slug, "rules")
        out = await _rules_out(conn, slug)
    rules.forget(slug)
    return out


@router.get("/{slug}/depots")
async def list_depots(slug: Slug, pool: PoolDep, _auth: DispatcherDep) -> list[dict[str, Any]]:
    async with pool.acquire() as conn:
        town = await queries.town_id(conn, slug)
        rows = await conn.fetch(
            """SELECT id, name, ST_AsGeoJSON(geom, 7)::json AS geometry, radius_m
                 FROM depots WHERE town_id = $1 ORDER BY id""", town)
    return [dict(r) for r in rows]


@router.post("/{slug}/depots", status_code=201)
async def add_depot(slug: Slug, body: DepotIn, pool: PoolDep, rules: RulesDep,
                    _auth: DispatcherDep) -> dict[str, Any]:
    """A depot: vehicles inside it (polygon) or within radius_m of it (point) are hidden
    from the public map."""
    async with pool.acquire() as conn, conn.transaction():
        town = await queries.town_id(conn, slug)
        try:
            depot = await conn.fetchval(
                """INSERT INTO depots (town_id, name, geom, radius_m)
                   VALUES ($1, $2, ST_SetSRID(ST_GeomFromGeoJSON($3::json), 4326), $4)
                   RETURNING id""", town, body.name, body.geometry, body.radius_m)
        except asyncpg.PostgresError as exc:
            raise InvalidInput(f"not a usable depot geometry: {exc}") from None
        await _announce(conn, slug, "rules")
    rules.forget(slug)
    return {"id": depot, "name": body.name, "radius_m": body.radius_m}


@router.delete("/{slug}/depots/{depot}", status_code=204)
async def delete_depot(slug: Slug, depot: RowId, pool: PoolDep, rules: RulesDep,
                       _auth: DispatcherDep) -> None:
    async with pool.acquire() as conn, conn.transaction():
        town = await queries.town_id(conn, slug)
        if await conn.fetchval("DELETE FROM depots WHERE id = $1 AND town_id = $2 "
                               "RETURNING id", depot, town) is None:
            raise NotFound(f"no depot {depot} in '{slug}'")
        await _announce(conn, slug, "rules")
    rules.forget(slug)


@router.get("/{slug}/reports")
async def reports(
    slug: Slug, pool: PoolDep, _auth: DispatcherDep,
    since: Annotated[datetime | None, Query()] = None,
    status: Annotated[Literal["open", "closed"] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[dict[str, Any]]:
    """Residents' problem reports, newest first, as Open311 GeoReport v2 requests."""
    async with pool.acquire() as conn:
        town = await queries.town_id(conn, slug)
        return await list_reports(conn, town, since, status, limit)
