"""REST resources: towns and their streets (public, read-only), and their vehicles
(dispatchers only)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Path, Response

from app import queries
from app.deps import PoolDep
from app.public_deps import DispatcherDep

router = APIRouter(prefix="/api", tags=["towns"])

Slug = Path(pattern=r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


@router.get("/towns")
async def list_towns(pool: PoolDep) -> list[dict[str, Any]]:
    async with pool.acquire() as conn:
        return await queries.list_towns(conn)


@router.get("/towns/{slug}")
async def get_town(pool: PoolDep, slug: str = Slug) -> dict[str, Any]:
    """The town, its extent, and the storm the map shows (running, else the last one)."""
    async with pool.acquire() as conn:
        town = await queries.get_town(conn, slug)
        town["storm"] = await queries.storm_shown(conn, await queries.town_id(conn, slug))
        return town


@router.get("/towns/{slug}/vehicles")
async def town_vehicles(
    pool: PoolDep, _dispatcher: DispatcherDep, slug: str = Slug
) -> list[dict[str, Any]]:
    """Every vehicle of the town that has reported, with its newest position, undelayed
    and by its real name: for dispatchers (bearer dispatch token)."""
    async with pool.acquire() as conn:
        return await queries.vehicles(conn, await queries.town_id(conn, slug))


@router.get(
    "/towns/{slug}/streets",
    response_class=Response,
    responses={200: {"content": {"application/geo+json": {}}}},
)
async def town_streets(pool: PoolDep, slug: str = Slug) -> Response:
    """The town's street segments as GeoJSON, without service status (that comes with the
    town's public delay applied: tiles, open data). Map data © OpenStreetMap contributors
    where imported from OpenStreetMap."""
    async with pool.acquire() as conn:
        body = await queries.streets_geojson(conn, await queries.town_id(conn, slug))
    return Response(body, media_type="application/geo+json",
                    headers={"Cache-Control": "public, max-age=300"})
