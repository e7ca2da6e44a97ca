"""Vector tiles of street status: ``/tiles/<town>/{z}/{x}/{y}.pbf``."""

from __future__ import annotations

import hashlib
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from app.deps import PoolDep
from app.errors import NotFound
from app.public_deps import PublicDep, RulesDep
from app.public_status import check_storm
from app.tiles import street_tile, valid_tile

router = APIRouter(tags=["residents"])

MVT = "application/vnd.mapbox-vector-tile"


@router.get(
    "/tiles/{slug}/{z}/{x}/{y}.pbf",
    response_class=Response,
    responses={200: {"content": {MVT: {}}}, 304: {"description": "not modified"}},
)
async def tile(
    slug: Annotated[str, Path(pattern=r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")],
    z: int, x: int, y: int, request: Request, pool: PoolDep, rules_cache: RulesDep,
    public: PublicDep,
    storm: Annotated[int | None, Query(ge=0, le=2**63 - 1,
                                       description="storm id; 0 = outside storms; "
                                       "default: the storm shown")] = None,
    v: Annotated[str | None, Query(max_length=100,
                                   description="status version from the live snapshot")]
    = None,
) -> Response:
    """Layer ``streets``: feature id = segment id; ``name``, ``priority``, ``passes``,
    and ``last``/``plowed``/``salted`` as epoch seconds, absent when never this storm."""
    if not valid_tile(z, x, y):
        raise NotFound("no such tile")
    async with pool.acquire() as conn:
        rules = await rules_cache.get(conn, slug)
        key = await check_storm(conn, rules, storm)
        body = await street_tile(conn, rules, key, z, x, y)
    etag = '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'
    # A versioned URL only ever gets newer content (see app.public_status.status_version),
    # so it may be kept; an unversioned one must be revalidated (cheap with the ETag).
    cache = (f"public, max-age={public.tile_max_age_s}" if v
             else "public, max-age=0, must-revalidate")
    headers = {"Cache-Control": cache, "ETag": etag}
    if etag in (request.headers.get("if-none-match") or ""):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=MVT, headers=headers)
