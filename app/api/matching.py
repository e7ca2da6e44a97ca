"""A town's map-matching settings, for its dispatchers (``/api/dispatch/towns/{slug}``).

Only the knobs in ``geo.matchtypes.SETTABLE``, each within its range: local policy
such as turning off the joining of dead ends a few metres apart where a barrier
really divides them (``map_gap_m``: 0), or the GPS error assumed for devices that
report none. The town's values go on top of the deployment's
(``PLOWSHARE_COVERAGE_MATCH``; the API server and the ingest workers must be given the
same). The coverage worker picks a change up within a round: each vehicle's track so
far is finished with the old settings, its next fixes are matched with the new ones.
Service already recorded stays as it is.
"""

from __future__ import annotations

from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Body
from pydantic import StrictFloat, StrictInt

from app import queries
from app.api.dispatch import Slug
from app.deps import PoolDep, SettingsDep
from app.errors import InvalidInput
from app.public_deps import DispatcherDep
from app.settings import CoverageSettings
from geo.matchtypes import SETTABLE

router = APIRouter(prefix="/api/dispatch/towns", tags=["dispatch"])
# Strict: true or "6" is refused, not read as 1 or 6.
Changes = Annotated[dict[str, StrictFloat | StrictInt | None], Body(
    description="knob -> value; null returns a knob to the deployment's value",
    examples=[{"map_gap_m": 0}])]


async def _town_config(conn: asyncpg.Connection, slug: str, *, lock: bool = False
                       ) -> tuple[int, dict[str, Any]]:
    town = await queries.town_id(conn, slug)
    # Locked when changing it: two dispatchers' changes at once both land.
    return town, await queries.town_match_config(conn, town, lock=lock)


def _out(coverage: CoverageSettings, town: dict[str, Any]) -> dict[str, Any]:
    # Stored past these checks (SQL by hand), the town's are ignored, as the worker does.
    effective, problem = coverage.town_match_config(town)
    return {
        "town": town,  # the town's own changes
        "effective": {k: getattr(effective, k) for k in SETTABLE},  # what its matcher uses
        "problem": None if problem is None else f"the town's settings are ignored: {problem}",
        "deployment": {k: getattr(coverage.match_config(), k) for k in SETTABLE},
        "ranges": {k: list(v) for k, v in SETTABLE.items()},
    }


@router.get("/{slug}/matching")
async def get_matching(slug: Slug, pool: PoolDep, settings: SettingsDep,
                       _auth: DispatcherDep) -> dict[str, Any]:
    async with pool.acquire() as conn:
        _, town = await _town_config(conn, slug)
    return _out(settings.coverage, town)


@router.patch("/{slug}/matching")
async def set_matching(slug: Slug, body: Changes, pool: PoolDep, settings: SettingsDep,
                       _auth: DispatcherDep) -> dict[str, Any]:
    """Change some of the town's matcher knobs (a null value removes the town's own)."""
    async with pool.acquire() as conn, conn.transaction():
        town_id, town = await _town_config(conn, slug, lock=True)
        for name, value in body.items():
            if value is None:
                town.pop(name, None)
            else:
                town[name] = value
        try:
            settings.coverage.match_config().changed(town)
        except ValueError as exc:
            raise InvalidInput(str(exc)) from exc
        await conn.execute(
            """UPDATE town_settings SET match_config = $2::jsonb, updated_at = now()
                WHERE town_id = $1""", town_id, town)
    return _out(settings.coverage, town)
