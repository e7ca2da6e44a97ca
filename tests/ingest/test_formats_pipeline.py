"""Every format through the real pipeline into a real PostGIS: what is stored (with the
device time), what is recorded as not a position, and the Drammen feed end to end."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import orjson
import pytest

from app.settings import IngestSettings
from ingest.metrics import IngestMetrics
from ingest.model import Message
from ingest.pipeline import Pipeline
from tests.geo.geo_shared_data import shared_data
from tests.support import add_town

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "formats"
NOW = datetime.now(UTC).replace(microsecond=0)


def pipeline(clock: datetime | None = None, **settings: object) -> Pipeline:
    return Pipeline(IngestSettings(**settings), IngestMetrics(),  # type: ignore[arg-type]
                    clock=(lambda: clock) if clock else (lambda: datetime.now(UTC)))


def owntracks(payload: dict[str, object], vehicle: str = "plow-7") -> Message:
    return Message(f"owntracks/kouvola/{vehicle}", orjson.dumps(payload), datetime.now(UTC))


def epoch(seconds_ago: float) -> int:
    return int((NOW - timedelta(seconds=seconds_ago)).timestamp())


async def test_owntracks_location_stored_with_device_time_and_lwt_recorded(
    pool: asyncpg.Pool, conn: asyncpg.Connection
) -> None:
    await add_town(conn)
    p = pipeline()
    batch = await p.process(pool, [
        owntracks({"_type": "location", "lat": 60.87, "lon": 26.70, "tst": epoch(10),
                   "created_at": epoch(8), "vel": 36, "acc": 6, "batt": 70, "tid": "p7"}),
        owntracks({"_type": "lwt", "tst": epoch(3600)}),
        owntracks({"_type": "transition", "event": "leave", "tst": epoch(9)}),
    ])
    assert len(batch.stored) == 1
    row = await conn.fetchrow("SELECT fix_time, device_time, received_at, speed_mps, "
                              "accuracy_m, raw FROM pings")
    assert row["fix_time"] == NOW - timedelta(seconds=10)
    assert row["device_time"] == NOW - timedelta(seconds=8)
    assert row["received_at"] >= NOW
    assert row["speed_mps"] == pytest.approx(10.0)  # 36 km/h
    assert (row["accuracy_m"], row["raw"]["batt"]) == (6.0, 70)
    rejected = await conn.fetch("SELECT reason, detail, town_id, vehicle_ident, payload "
                                "FROM rejected_pings ORDER BY detail")
    assert [r["reason"] for r in rejected] == ["not_a_position", "not_a_position"]
    assert rejected[0]["detail"].startswith("owntracks _type 'lwt'")
    assert all(r["town_id"] is not None and r["vehicle_ident"] == "plow-7" for r in rejected)
    assert orjson.loads(rejected[0]["payload"])["_type"] == "lwt"
    assert p.metrics.rejected_count("not_a_position") == 2


async def test_osmand_messages_as_the_http_endpoint_hands_them_over(
    pool: asyncpg.Pool, conn: asyncpg.Connection
) -> None:
    await add_town(conn)
    p = pipeline()
    form = "application/x-www-form-urlencoded"

    def osmand(payload: str | bytes, content_type: str | None = form) -> Message:
        raw = payload.encode() if isinstance(payload, str) else payload
        return Message("osmand/kouvola/plow-7", raw, datetime.now(UTC),
                       content_type=content_type)

    t = epoch(20)
    json_body = orjson.loads((FIXTURES / "osmand" / "traccar_client_9.json").read_bytes())
    json_body["location"]["timestamp"] = (NOW - timedelta(seconds=5)).isoformat()
    batch = await p.process(pool, [
        osmand(f"id=plow-7&timestamp={t}&lat=60.87&lon=26.70&speed=10&blade=down"),
        osmand(f"id=plow-7&timestamp={t + 5}&lat=60.87&lon=26.70&valid=false"),
        osmand(f"id=plow-9&timestamp={t + 6}&lat=60.87&lon=26.70"),
        osmand(orjson.dumps(json_body), "application/json"),
    ])
    assert len(batch.stored) == 2
    rows = await conn.fetch("SELECT plow_down, speed_mps, raw FROM pings ORDER BY fix_time")
    assert rows[0]["plow_down"] is True and rows[0]["raw"]["blade"] == "down"
    assert rows[0]["speed_mps"] == pytest.approx(10 * 1852 / 3600)
    assert rows[1]["raw"]["device_id"] == "plow-7"
    reasons = await conn.fetch("SELECT reason, payload FROM rejected_pings ORDER BY reason")
    assert [r["reason"] for r in reasons] == ["invalid_fix", "vehicle_mismatch"]
    # the mismatch is stored exactly as received: the raw query string
    assert reasons[1]["payload"].startswith(b"id=plow-9&")
    # The endpoint answers from the Batch: stored, or refused with a named reason.
    assert {r.reason for r in batch.rejections} == {"invalid_fix", "vehicle_mismatch"}


async def test_drammen_feed_end_to_end(pool: asyncpg.Pool, conn: asyncpg.Connection) -> None:
    await add_town(conn, "drammen", "Drammen")
    raw = shared_data("plow", "drammen", "raw_feed_sample.json").read_bytes()
    # The sample is from 2023-02-13: judge it as if it had just arrived.
    p = pipeline(clock=datetime(2023, 2, 14, 0, 0, tzinfo=UTC))
    batch = await p.process(pool, [Message("drammen/drammen", raw, datetime.now(UTC))])
    assert len(batch.stored) == 577
    counts = await conn.fetch(
        "SELECT v.ident, count(*) AS n, count(*) FILTER (WHERE spreader_on) AS spreading "
        "FROM pings p JOIN vehicles v ON v.id = p.vehicle_id GROUP BY v.ident ORDER BY 1")
    assert {r["ident"]: r["n"] for r in counts} == {
        "1090015369": 27, "4028615773": 5, "519063249": 371, "815597455": 174}
    assert sum(r["spreading"] for r in counts) == 214
    assert await conn.fetchval("SELECT count(*) FROM vehicle_positions") == 4
    [r] = await conn.fetch("SELECT reason FROM rejected_pings")
    assert r["reason"] == "not_a_position"
    again = await p.process(pool, [Message("drammen/drammen", raw, datetime.now(UTC))])
    assert again.stored == [] and p.metrics.rejected_count("duplicate") == 577


async def test_native_fixes_have_no_device_time(
    pool: asyncpg.Pool, conn: asyncpg.Connection
) -> None:
    await add_town(conn)
    fix = {"time": (NOW - timedelta(seconds=3)).isoformat(), "lat": 60.87, "lon": 26.7}
    await pipeline().process(pool, [Message("plowshare/kouvola/plow-1/position",
                                            orjson.dumps(fix), datetime.now(UTC))])
    assert await conn.fetchval("SELECT device_time FROM pings") is None
