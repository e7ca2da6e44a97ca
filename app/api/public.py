"""The residents' REST resources: the page's configuration, finding a street, the answer
card with its evidence, and reporting a problem. All public, no login."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request

from app import queries
from app.cards import segment_card, street_card
from app.deps import PoolDep
from app.errors import NotFound
from app.public_deps import OutlookDep, PublicDep, RulesDep
from app.reports import ReportIn, file_report
from app.search import nearest, search

router = APIRouter(prefix="/api/towns", tags=["residents"])

Slug = Annotated[str, Path(pattern=r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")]
RowId = Annotated[int, Path(ge=1, le=2**63 - 1)]
# PostgreSQL text cannot hold NUL; refuse it here rather than fail in the database.
NO_NUL = r"^[^\x00]*$"


@router.get("/{slug}/public")
async def public_config(slug: Slug, pool: PoolDep, rules_cache: RulesDep) -> dict[str, Any]:
    """What the public page needs first: the town, the storm it shows, the rules it draws
    by (colour bins, delay, idle cut-off) and where its tiles are."""
    async with pool.acquire() as conn:
        rules = await rules_cache.get(conn, slug)
        town = await queries.get_town(conn, slug)
    return {
        "town": town,
        "storm": rules.storm,
        "rules": rules.config(),
        "tiles": f"/tiles/{slug}/{{z}}/{{x}}/{{y}}.pbf",
    }


@router.get("/{slug}/search")
async def find_street(
    slug: Slug, pool: PoolDep, rules_cache: RulesDep, public: PublicDep,
    q: Annotated[str, Query(min_length=1, max_length=120, pattern=NO_NUL)],
) -> dict[str, Any]:
    """Streets by name (typo-tolerant, accents ignored, "5th Ave" = "Fifth Avenue") and,
    where the town has address ranges, addresses ("123 Oak St")."""
    async with pool.acquire() as conn:
        rules = await rules_cache.get(conn, slug)
        results = await search(conn, rules.town_id, q, public.search_limit)
    return {"query": q, "results": results}


@router.get("/{slug}/nearest")
async def nearest_street(
    slug: Slug, pool: PoolDep, rules_cache: RulesDep, public: PublicDep,
    outlook: OutlookDep,
    lat: Annotated[float, Query(ge=-90, le=90)],
    lon: Annotated[float, Query(ge=-180, le=180)],
) -> dict[str, Any]:
    """The block nearest to a point ("near me"), with its card."""
    async with pool.acquire() as conn:
        rules = await rules_cache.get(conn, slug)
        found = await nearest(conn, rules.town_id, lon, lat)
        if found is None or found[2] > public.near_max_m:
            raise NotFound(f"no street of '{slug}' within {public.near_max_m:.0f} m")
        card = await segment_card(conn, rules, found[0], outlook)
    return {**card, "distance_m": round(found[2], 1)}


@router.get("/{slug}/segments/{segment}")
async def segment_status_card(
    slug: Slug, segment: RowId, pool: PoolDep, rules_cache: RulesDep, outlook: OutlookDep
) -> dict[str, Any]:
    """One block: status in the storm shown, the evidence (pseudonymous vehicle, blade,
    time, match confidence) and how far along the priority classes are."""
    async with pool.acquire() as conn:
        return await segment_card(conn, await rules_cache.get(conn, slug), segment, outlook)


@router.get("/{slug}/street-status")
async def street_status(
    slug: Slug, pool: PoolDep, rules_cache: RulesDep, outlook: OutlookDep,
    name: Annotated[str, Query(min_length=1, max_length=200, pattern=NO_NUL)],
) -> dict[str, Any]:
    """Every block of one street (the exact name a search returned)."""
    async with pool.acquire() as conn:
        return await street_card(conn, await rules_cache.get(conn, slug), name, outlook)


@router.post("/{slug}/reports", status_code=201)
async def report_problem(
    slug: Slug, report: ReportIn, request: Request, pool: PoolDep, rules_cache: RulesDep,
    public: PublicDep,
) -> dict[str, Any]:
    """Say a street was not plowed (or salted, or is blocked). No personal data; a few
    reports per connection per hour."""
    client = request.client.host if request.client else "unknown"
    async with pool.acquire() as conn:
        rules = await rules_cache.get(conn, slug)
        return await file_report(conn, rules, report, client, public.report_limit,
                                 public.report_window_s)
