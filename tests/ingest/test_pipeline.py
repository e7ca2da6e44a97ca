"""The ingest pipeline against a real PostGIS: what is stored, what is quarantined and
why, idempotence, and the latest position never moving backwards."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg
import orjson
import pytest

from app import live
from app.settings import IngestSettings
from ingest.metrics import IngestMetrics
from ingest.pipeline import Pipeline
from tests.support import add_town
from tests.support import position_message as message

NOW = datetime.now(UTC).replace(microsecond=0)


def fix(seconds_ago: float, lat: float = 60.87, lon: float = 26.70, **extra: object) -> dict:
    t = NOW - timedelta(seconds=seconds_ago)
    return {"time": t.isoformat(), "lat": lat, "lon": lon, **extra}


def pipeline(**settings: object) -> Pipeline:
    return Pipeline(IngestSettings(**settings), IngestMetrics())  # type: ignore[arg-type]


async def test_good_and_bad_fixes_all_accounted_for(
    pool: asyncpg.Pool, conn: asyncpg.Connection
) -> None:
    await add_town(conn)
    p = pipeline()
    messages = [
        message("plow-1", [fix(30, seq=1, plow=True), fix(20, seq=2, lat=95), fix(10, seq=3)]),
        message("plow-2", fix(5, speed=7.5, heading=90, spreader=True)),
        message("plow-2", b"garbage"),
        message("plow-3", fix(5), town="atlantis"),
        message("plow-3", fix(-3600)),  # an hour in the future
    ]
    batch = await p.process(pool, messages)
    assert len(batch.stored) == 3
    rows = await conn.fetch(
        "SELECT v.ident, p.seq, ST_X(p.geom) AS lon, p.speed_mps, p.plow_down, p.raw "
        "FROM pings p JOIN vehicles v ON v.id = p.vehicle_id ORDER BY v.ident, p.fix_time"
    )
    assert [(r["ident"], r["seq"]) for r in rows] == [
        ("plow-1", 1), ("plow-1", 3), ("plow-2", None)]
    assert rows[0]["plow_down"] is True and rows[0]["raw"]["seq"] == 1
    assert rows[2]["speed_mps"] == pytest.approx(7.5)
    rejected = await conn.fetch(
        "SELECT reason, town_id IS NOT NULL AS has_town, fix_index, payload "
        "FROM rejected_pings ORDER BY reason"
    )
    assert [(r["reason"], r["has_town"]) for r in rejected] == [
        ("bad_coordinates", True), ("bad_json", True), ("future_time", True),
        ("unknown_town", False)]
    assert rejected[1]["payload"] == b"garbage"
    assert orjson.loads(rejected[0]["payload"])["seq"] == 2 and rejected[0]["fix_index"] == 1
    assert p.metrics.rejected_count("unknown_town") == 1
    assert p.metrics.rejected_count("future_time") == 1


async def test_redelivery_is_stored_once_and_counted_as_duplicate(
    pool: asyncpg.Pool, conn: asyncpg.Connection
) -> None:
    await add_town(conn)
    p = pipeline()
    m = message("plow-1", [fix(3, seq=1), fix(2, seq=2)])
    first = await p.process(pool, [m])
    again = await p.process(pool, [m, m])
    assert len(first.stored) == 2 and again.stored == []
    assert await conn.fetchval("SELECT count(*) FROM pings") == 2
    reasons = await conn.fetch("SELECT reason, detail FROM rejected_pings")
    assert len(reasons) == 4 and {r["reason"] for r in reasons} == {"duplicate"}
    assert p.metrics.rejected_count("duplicate") == 4


async def test_latest_position_never_moves_backwards(
    pool: asyncpg.Pool, conn: asyncpg.Connection
) -> None:
    await add_town(conn)
    p = pipeline()
    await p.process(pool, [message("plow-1", fix(10, lat=60.9))])
    # A replayed buffer arrives later, with older fixes.
    await p.process(pool, [message("plow-1", [fix(60, lat=60.1), fix(30, lat=60.2)])])
    lat = await conn.fetchval("SELECT ST_Y(geom) FROM vehicle_positions")
    assert lat == pytest.approx(60.9)
    assert await conn.fetchval("SELECT count(*) FROM pings") == 3
    await p.process(pool, [message("plow-1", fix(1, lat=61.0))])
    assert await conn.fetchval("SELECT ST_Y(geom) FROM vehicle_positions") == pytest.approx(61.0)


async def test_partitions_are_made_for_the_days_of_the_fixes(
    pool: asyncpg.Pool, conn: asyncpg.Connection
) -> None:
    await add_town(conn)
    p = pipeline()
    await p.process(pool, [message("plow-1", [fix(3 * 86400), fix(10)])])
    parts = await conn.fetch(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'pings'::regclass"
    )
    days = {(NOW - timedelta(days=3)).strftime("%Y%m%d"), (NOW - timedelta(seconds=10))
            .strftime("%Y%m%d")}
    assert {r["relname"] for r in parts} >= {f"pings_p{d}" for d in days}
    assert await conn.fetchval("SELECT count(*) FROM pings") == 2


async def test_too_old_and_unknown_vehicle_when_registration_is_off(
    pool: asyncpg.Pool, conn: asyncpg.Connection
) -> None:
    await add_town(conn)
    p = pipeline(auto_register_vehicles=False, max_age_s=3600)
    await p.process(pool, [message("ghost", fix(5)), message("ghost", fix(7200))])
    reasons = sorted(await conn.fetchval("SELECT array_agg(reason) FROM rejected_pings"))
    assert reasons == ["too_old", "unknown_vehicle"]
    assert await conn.fetchval("SELECT count(*) FROM vehicles") == 0


async def test_live_notification_is_sent_on_commit_with_the_newest_fix(
    pool: asyncpg.Pool, conn: asyncpg.Connection, database: str
) -> None:
    await add_town(conn)
    listener = await asyncpg.connect(database)
    got: asyncio.Queue[str] = asyncio.Queue()
    await listener.add_listener(live.CHANNEL, lambda *a: got.put_nowait(a[3]))
    try:
        p = pipeline()
        await p.process(pool, [message("plow-1", [fix(9, lat=60.5), fix(3, lat=60.6)]),
                               message("plow-2", fix(4, heading=45))])
        payload = orjson.loads(await asyncio.wait_for(got.get(), 5))
        assert payload["town"] == "kouvola" and payload["type"] == "positions"
        by_id = {v["id"]: v for v in payload["items"]}
        assert set(by_id) == {"plow-1", "plow-2"}
        assert by_id["plow-1"]["lat"] == pytest.approx(60.6)
        assert by_id["plow-2"]["heading"] == 45.0
        # An old fix stores but does not move the live map.
        await p.process(pool, [message("plow-1", fix(100, lat=10.0))])
        await asyncio.sleep(0.3)
        assert got.empty()
    finally:
        await listener.close()


async def test_batch_with_a_poison_message_keeps_the_rest(
    pool: asyncpg.Pool, conn: asyncpg.Connection
) -> None:
    await add_town(conn)
    p = pipeline()
    # A vehicle id the database refuses (too long for its CHECK) but the topic regex
    # would not catch is impossible by design; simulate a refusal with a trigger instead.
    await conn.execute(
        """CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN IF NEW.seq = 666 THEN RAISE EXCEPTION 'refused'; END IF; RETURN NEW; END $$;
           CREATE TRIGGER refuse BEFORE INSERT ON pings FOR EACH ROW EXECUTE FUNCTION refuse();"""
    )
    batch = await p.process(pool, [message("plow-1", fix(5, seq=1)),
                                   message("plow-1", fix(4, seq=666)),
                                   message("plow-1", fix(3, seq=3))])
    assert sorted(x.seq or 0 for x in batch.stored) == [1, 3]
    assert await conn.fetchval("SELECT array_agg(reason) FROM rejected_pings") == [
        "store_failed"]


async def test_hostile_nesting_and_decoder_bugs_cost_one_message_not_the_ingester(
    pool: asyncpg.Pool, conn: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    await add_town(conn)
    p = pipeline()
    deep = b"[" + b"[" * 300 + b"]" * 300 + b"]"  # orjson reads it, but cannot write it back
    batch = await p.process(pool, [message("plow-1", deep), message("plow-1", fix(3))])
    assert len(batch.stored) == 1
    assert [r.reason for r in batch.rejections] == ["bad_shape"]

    import ingest.pipeline as pipeline_module

    def broken(*_args: object) -> None:
        raise RuntimeError("a decoder bug")

    monkeypatch.setattr(pipeline_module, "decode", broken)
    batch = await p.process(pool, [message("plow-1", fix(2))])
    [r] = batch.rejections
    assert r.reason == "decode_failed" and r.payload == orjson.dumps(fix(2))
    assert await conn.fetchval(
        "SELECT count(*) FROM rejected_pings WHERE reason = 'decode_failed'") == 1
