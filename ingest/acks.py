"""End-to-end acknowledgements: after a batch commits, each vehicle that sent fixes gets,
on ``<prefix>/<town>/<vehicle>/ack`` (QoS 1, retained), the highest sequence number up to
which *all* of its fixes are settled, and its newest stored fix time::

    {"seq": 1234, "time": "2026-11-29T07:15:02+00:00"}

A fix is settled when it is stored or quarantined (a rejected fix is not worth sending
again). A device numbers its fixes 0, 1, 2, … (kept across restarts), keeps every fix
until an ack covers its seq and re-sends the rest after a reconnect or a quiet period (see
app/device_client.py). Fixes without ``seq`` are stored as usual but cannot be
acknowledged this way.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg
import orjson

from ingest.model import Batch

_MAX_SCAN = 50_000


@dataclass(frozen=True, slots=True)
class Ack:
    town: str
    vehicle: str
    seq: int
    newest_fix: datetime | None  # None until a fix of the vehicle is stored

    def payload(self) -> bytes:
        newest = None if self.newest_fix is None else self.newest_fix.isoformat()
        return orjson.dumps({"seq": self.seq, "time": newest})


def vehicles_to_ack(batch: Batch) -> set[tuple[str, str]]:
    """Every (town, vehicle) whose fixes in this batch are now settled — stored, already
    stored (a re-sent fix must be acknowledged again) or quarantined."""
    keys = {(p.town, p.vehicle) for p in batch.stored if p.seq is not None}
    keys |= {(r.town, r.vehicle) for r in batch.rejections if r.town and r.vehicle}
    return keys


async def advance(conn: asyncpg.Connection, town: str, vehicle: str) -> Ack | None:
    """Move the vehicle's high-water mark over the contiguous seqs now stored."""
    async with conn.transaction():
        row = await conn.fetchrow(
            """SELECT v.id, v.town_id, a.acked_seq,
                      coalesce(a.since, '-infinity'::timestamptz) AS since
                 FROM vehicles v JOIN towns t ON t.id = v.town_id
                 LEFT JOIN device_acks a ON a.vehicle_id = v.id
                WHERE t.slug = $1 AND v.ident = $2
                  FOR UPDATE OF v""", town, vehicle)
        if row is None:
            return None
        # Sequence numbers start at 0: starting at the lowest seq we happen to hold would
        # acknowledge past fixes the broker lost before the first one got through.
        acked: int = -1 if row["acked_seq"] is None else row["acked_seq"]
        # Stored or quarantined, a fix is settled: the device need not send it again.
        seqs = await conn.fetch(
            """SELECT seq FROM pings
                WHERE vehicle_id = $1 AND seq IS NOT NULL AND seq > $2 AND stored_at >= $6
               UNION
               SELECT seq FROM rejected_pings
                WHERE town_id = $4 AND vehicle_ident = $5 AND seq IS NOT NULL AND seq > $2
                  AND stored_at >= $6
               ORDER BY seq LIMIT $3""",
            row["id"], acked, _MAX_SCAN, row["town_id"], vehicle, row["since"])
        high = acked
        for r in seqs:
            if r["seq"] != high + 1:
                break
            high = r["seq"]
        if high < 0:
            return None
        newest = await conn.fetchval(
            "SELECT fix_time FROM vehicle_positions WHERE vehicle_id = $1", row["id"])
        await conn.execute(
            """INSERT INTO device_acks (vehicle_id, town_id, acked_seq, newest_fix)
               VALUES ($1, $2, $3, $4)
               ON CONFLICT (vehicle_id) DO UPDATE
                  SET acked_seq = greatest(device_acks.acked_seq, EXCLUDED.acked_seq),
                      newest_fix = EXCLUDED.newest_fix, updated_at = now()""",
            row["id"], row["town_id"], high, newest)
        return Ack(town, vehicle, high, newest)
