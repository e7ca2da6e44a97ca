"""Open data: ``/api/towns/<slug>/segments`` as GeoJSON or CSV (docs/open-data-schema.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Response

from app.deps import PoolDep
from app.errors import InvalidInput
from app.opendata import segment_rows, to_csv, to_geojson
from app.public_deps import RulesDep
from app.public_status import check_storm

router = APIRouter(prefix="/api/towns", tags=["open data"])


def _bbox(text: str | None) -> list[float] | None:
    if text is None:
        return None
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise InvalidInput("bbox must be minLon,minLat,maxLon,maxLat") from None
    if len(values) != 4 or not (values[0] <= values[2] and values[1] <= values[3]):
        raise InvalidInput("bbox must be minLon,minLat,maxLon,maxLat")
    return values


@router.get(
    "/{slug}/segments",
    response_class=Response,
    responses={200: {"content": {"application/geo+json": {}, "text/csv": {}}}},
)
async def segments(
    slug: Annotated[str, Path(pattern=r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")],
    pool: PoolDep, rules_cache: RulesDep,
    bbox: Annotated[str | None, Query(description="minLon,minLat,maxLon,maxLat")] = None,
    since: Annotated[datetime | None, Query(
        description="only segments serviced at or after this time (ISO 8601 with offset)")]
    = None,
    storm: Annotated[int | None, Query(
        ge=0, le=2**63 - 1,
        description="storm id; 0 = outside storms; default: the storm the map shows")] = None,
    format: Annotated[Literal["geojson", "csv"], Query()] = "geojson",
) -> Response:
    """Every current segment with its service status (fields: docs/open-data-schema.md).
    CSV carries the geometry as WKT in column ``wkt``."""
    box = _bbox(bbox)
    if since is not None and since.tzinfo is None:
        raise InvalidInput("since needs a UTC offset, e.g. 2026-11-29T07:00:00Z")
    async with pool.acquire() as conn:
        rules = await rules_cache.get(conn, slug)
        key = await check_storm(conn, rules, storm)
        rows = await segment_rows(conn, rules, key, box, since)
    headers = {"Cache-Control": "no-cache"}
    if format == "csv":
        headers["Content-Disposition"] = f'attachment; filename="{slug}-segments.csv"'
        return Response(to_csv(rules, key, rows), media_type="text/csv", headers=headers)
    return Response(to_geojson(rules, key, rows), media_type="application/geo+json",
                    headers=headers)
