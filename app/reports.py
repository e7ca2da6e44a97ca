"""Problem reports from residents ("this street was not plowed"), stored as Open311-style
service requests, and the per-client rate limit that keeps the box from being flooded.

Nothing personal is asked for or stored. The rate limit needs to recognise a client for
one window, so it keeps a salted hash of the address (salt stays in the database) and
deletes the counter when the window is over.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import asyncpg
from pydantic import BaseModel, ConfigDict, Field

from app.errors import InvalidInput, PlowshareError
from app.town_rules import TownRules

ServiceCode = Literal["not_plowed", "not_salted", "blocked", "other"]
SERVICE_NAMES: dict[str, str] = {
    "not_plowed": "Street not plowed",
    "not_salted": "Street not salted",
    "blocked": "Street blocked by snow",
    "other": "Other winter-maintenance problem",
}


class RateLimited(PlowshareError):
    """Too many reports from one client; ``retry_after_s`` says when to try again."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__("too many reports from this connection; try again later")
        self.retry_after_s = retry_after_s


class ReportIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    segment_id: int = Field(ge=1)
    service_code: ServiceCode = "not_plowed"
    description: str | None = Field(None, max_length=500)


_LIMIT = """
WITH gone AS (DELETE FROM report_limits WHERE window_start < now() - make_interval(secs => $2)),
     key AS (SELECT sha256(convert_to(p.client_salt::text || $1, 'UTF8')) AS k
               FROM public_secrets p)
INSERT INTO report_limits AS r (client_key, window_start, n)
SELECT key.k, date_bin(make_interval(secs => $2), now(), 'epoch'::timestamptz), 1 FROM key
ON CONFLICT (client_key, window_start) DO UPDATE SET n = r.n + 1
RETURNING n, extract(epoch FROM r.window_start + make_interval(secs => $2) - now())::int
          AS retry_after_s
"""

_INSERT = """
INSERT INTO problem_reports (town_id, segment_id, storm_id, service_code, description,
                             last_service_at_report, passes_at_report)
SELECT $1, s.id, nullif($3, 0), $4, $5, st.last_service, coalesce(st.passes, 0)
  FROM street_segments s
  LEFT JOIN segment_status st ON st.segment_id = s.id AND st.storm_key = $3
 WHERE s.town_id = $1 AND s.id = $2 AND s.valid_to IS NULL
RETURNING id, requested_at
"""


async def file_report(conn: asyncpg.Connection, rules: TownRules, report: ReportIn,
                      client: str, limit: int, window_s: int) -> dict[str, Any]:
    # Counted in its own statement, before anything else: an attempt that fails later
    # (a made-up segment) still counts, or probing would be free.
    row = await conn.fetchrow(_LIMIT, client, float(window_s))
    if row["n"] > limit:
        raise RateLimited(max(1, row["retry_after_s"]))
    created = await conn.fetchrow(
        _INSERT, rules.town_id, report.segment_id, rules.storm_key,
        report.service_code, (report.description or "").strip() or None)
    if created is None:
        raise InvalidInput(f"no street segment {report.segment_id} in '{rules.slug}'")
    return {"service_request_id": str(created["id"]), "status": "open",
            "requested_datetime": created["requested_at"].isoformat()}


_LIST = """
SELECT r.id, r.service_code, r.description, r.status, r.requested_at, r.updated_at,
       r.storm_id, r.last_service_at_report, r.passes_at_report, s.id AS segment_id, s.name,
       ST_Y(ST_LineInterpolatePoint(s.geom, 0.5)) AS lat,
       ST_X(ST_LineInterpolatePoint(s.geom, 0.5)) AS lon
  FROM problem_reports r JOIN street_segments s ON s.id = r.segment_id
 WHERE r.town_id = $1 AND r.requested_at >= coalesce($2, '-infinity'::timestamptz)
   AND ($3::text IS NULL OR r.status = $3)
 ORDER BY r.requested_at DESC, r.id DESC
 LIMIT $4
"""


async def list_reports(conn: asyncpg.Connection, town: int, since: datetime | None,
                       status: str | None, limit: int) -> list[dict[str, Any]]:
    """Open311 GeoReport v2 field names, plus plowshare's segment and evidence fields."""
    rows = await conn.fetch(_LIST, town, since, status, limit)
    return [
        {
            "service_request_id": str(r["id"]),
            "status": r["status"],
            "service_code": r["service_code"],
            "service_name": SERVICE_NAMES[r["service_code"]],
            "description": r["description"],
            "requested_datetime": r["requested_at"].isoformat(),
            "updated_datetime": r["updated_at"].isoformat(),
            "address": r["name"],
            "lat": round(r["lat"], 7),
            "long": round(r["lon"], 7),
            "segment_id": r["segment_id"],
            "storm_id": r["storm_id"],
            "last_service_at_report": (r["last_service_at_report"].isoformat()
                                   if r["last_service_at_report"] else None),
            "passes_at_report": r["passes_at_report"],
        }
        for r in rows
    ]

