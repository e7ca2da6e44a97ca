"""Named filters: the checks on one fix, the speed filter against neighbouring fixes, and
per-town settings read from the database on every batch."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import orjson
import pytest

from app.settings import IngestSettings
from ingest import filters
from ingest.filters import FilterConfig, Fix, TownFilters, first_failure, speed_failures
from ingest.metrics import IngestMetrics
from ingest.model import Message, Position
from ingest.pipeline import Pipeline
from tests.geo.geo_shared_data import shared_data
from tests.support import add_town
from tests.support import position_message as message

NOW = datetime.now(UTC).replace(microsecond=0)
T0 = datetime(2026, 11, 29, 7, 0, tzinfo=UTC)
# One degree of latitude is ~111.2 km: 0.001° ≈ 111 m.
DEG_M = 111_195.0


def position(seconds: float, lat: float = 60.0, vehicle_id: int = 1, **over: object
             ) -> Position:
    p = Position(topic="t", town="kouvola", vehicle=f"v{vehicle_id}",
                 fix_time=T0 + timedelta(seconds=seconds), received_at=T0, lat=lat,
                 lon=26.0, vehicle_id=vehicle_id)
    for key, value in over.items():
        setattr(p, key, value)
    return p


# -- pure checks ------------------------------------------------------------------------
def reason(p: Position, cfg: FilterConfig) -> str | None:
    failure = first_failure(p, cfg, T0)
    return None if failure is None else failure[0]


def test_checks_on_one_fix_in_order_and_switchable() -> None:
    cfg = FilterConfig(max_accuracy_m=50.0)
    assert reason(position(0), cfg) is None
    assert first_failure(position(0, valid=False), cfg, T0) == (
        "invalid_fix", "the device marked this fix invalid")
    assert reason(position(121), cfg) == "future_time"
    assert reason(position(-15 * 86400), cfg) == "too_old"
    assert reason(position(0, accuracy_m=80.0), cfg) == "poor_accuracy"
    assert reason(position(0, accuracy_m=50.0), cfg) is None
    # invalid is reported before the time, which is reported before the accuracy
    bad = position(500, valid=False, accuracy_m=500.0)
    assert reason(bad, cfg) == "invalid_fix"
    off = FilterConfig(max_accuracy_m=50.0, disabled=frozenset({"invalid_fix",
                                                                "future_time"}))
    assert reason(bad, off) == "poor_accuracy"
    # the accuracy filter is off by default; a fix without accuracy is never "poor"
    assert reason(position(0, accuracy_m=5000.0), FilterConfig()) is None


def test_distance_is_metres_on_the_sphere() -> None:
    assert filters.distance_m(60.0, 26.0, 60.001, 26.0) == pytest.approx(111.2, abs=0.1)
    assert filters.distance_m(60.0, 26.0, 60.0, 26.002) == pytest.approx(111.2, abs=0.3)
    assert filters.distance_m(0, 179.9995, 0, -179.9995) == pytest.approx(111.2, abs=0.1)


SPEED = FilterConfig(max_speed_mps=30.0, speed_slack_m=50.0)


def test_impossible_speed_allows_slack_and_accuracy() -> None:
    prev = Fix(T0, 60.0, 26.0, None)
    # 10 s at 30 m/s is 300 m; plus 50 m slack
    assert filters.impossible_speed(position(10, 60.0 + 340 / DEG_M), prev, SPEED) is None
    hit = filters.impossible_speed(position(10, 60.0 + 400 / DEG_M), prev, SPEED)
    assert hit is not None and hit[0] == "impossible_speed" and "400 m in 10.0 s" in hit[1]
    # both fixes' accuracy widens the allowance
    assert filters.impossible_speed(position(10, 60.0 + 400 / DEG_M, accuracy_m=30.0),
                                    Fix(T0, 60.0, 26.0, 30.0), SPEED) is None
    # off by default, and off when disabled
    assert filters.impossible_speed(position(1, 61.0), prev, FilterConfig()) is None
    off = FilterConfig(max_speed_mps=30.0, disabled=frozenset({"impossible_speed"}))
    assert filters.impossible_speed(position(1, 61.0), prev, off) is None


def test_speed_is_not_judged_across_long_gaps_or_equal_times() -> None:
    prev = Fix(T0, 60.0, 26.0, None)
    far = 60.0 + 50_000 / DEG_M  # 50 km away
    assert filters.impossible_speed(position(301, far), prev, SPEED) is None  # > 5 min
    assert filters.impossible_speed(position(299, far), prev, SPEED) is not None
    assert filters.impossible_speed(position(0, far), prev, SPEED) is None  # a duplicate


def test_a_buffered_array_is_checked_fix_by_fix_in_time_order() -> None:
    step = 100 / DEG_M  # 100 m per 10 s: 10 m/s
    fixes = [position(30, 60 + 3 * step), position(0, 60.0), position(10, 60 + step),
             position(20, 61.0),  # an outlier 111 km away
             position(20.5, 60 + 2 * step + step / 2)]
    failures = speed_failures(fixes, [None] * len(fixes), lambda p: SPEED)
    assert set(failures) == {3}
    assert failures[3][0] == "impossible_speed"


def test_a_stored_neighbour_closer_in_time_wins_over_an_earlier_batch_fix() -> None:
    fixes = [position(0, 60.0), position(100, 60.0)]
    # the stored fix at 90 s is 5 km away from the second fix: reject it
    stored = [None, Fix(T0 + timedelta(seconds=90), 60.0 + 5000 / DEG_M, 26.0, None)]
    assert set(speed_failures(fixes, stored, lambda p: SPEED)) == {1}
    # a stored fix older than the batch's own earlier fix is not the neighbour
    stored = [None, Fix(T0 - timedelta(seconds=90), 61.0, 26.0, None)]
    assert speed_failures(fixes, stored, lambda p: SPEED) == {}


def test_vehicles_do_not_judge_each_other() -> None:
    fixes = [position(0, 60.0, vehicle_id=1), position(5, 61.0, vehicle_id=2)]
    assert speed_failures(fixes, [None, None], lambda p: SPEED) == {}


def test_town_settings_override_only_what_they_set() -> None:
    base = FilterConfig(max_future=timedelta(seconds=120), max_accuracy_m=100.0,
                        disabled=frozenset({"invalid_fix"}))
    town = TownFilters(max_speed_mps=25.0, speed_window_s=60.0,
                       disabled=frozenset({"too_old"}))
    cfg = town.over(base)
    assert cfg.max_future == timedelta(seconds=120) and cfg.max_accuracy_m == 100.0
    assert cfg.max_speed_mps == 25.0 and cfg.speed_window == timedelta(seconds=60)
    assert cfg.disabled == {"invalid_fix", "too_old"} and cfg.checks_speed()
    assert TownFilters().over(base) == base


def test_deployment_defaults_come_from_ingest_settings() -> None:
    cfg = filters.defaults(IngestSettings(max_future_s=30, max_age_s=3600))
    assert (cfg.max_future, cfg.max_age) == (timedelta(seconds=30), timedelta(hours=1))
    # Until IngestSettings grows max_accuracy_m / max_speed_mps, those two are off.
    expected_acc = getattr(IngestSettings(), "max_accuracy_m", None)
    assert cfg.max_accuracy_m == expected_acc


# -- through the pipeline, against PostGIS ----------------------------------------------
def fix(seconds_ago: float, lat: float = 60.87, **extra: object) -> dict[str, object]:
    t = NOW - timedelta(seconds=seconds_ago)
    return {"time": t.isoformat(), "lat": lat, "lon": 26.70, **extra}


async def reasons(conn: asyncpg.Connection) -> list[tuple[str, str | None]]:
    rows = await conn.fetch("SELECT reason, town_slug FROM rejected_pings ORDER BY id")
    return [(r["reason"], r["town_slug"]) for r in rows]


async def test_each_town_its_own_thresholds(
    pool: asyncpg.Pool, conn: asyncpg.Connection
) -> None:
    await add_town(conn)
    await add_town(conn, "lahti", "Lahti")
    assert await filters.save_town_filters(
        conn, "kouvola", TownFilters(max_accuracy_m=50.0, disabled=frozenset({"too_old"})))
    assert not await filters.save_town_filters(conn, "nowhere", TownFilters())
    p = Pipeline(IngestSettings(max_age_s=3600), IngestMetrics())
    await p.process(pool, [
        message("plow-1", fix(5, accuracy=80.0)),
        message("plow-1", fix(7200, seq=1)),  # too old for the deployment, not for kouvola
        message("plow-1", fix(4, accuracy=80.0), "lahti"),
        message("plow-1", fix(7200, seq=2), "lahti"),
    ])
    assert await reasons(conn) == [("poor_accuracy", "kouvola"), ("too_old", "lahti")]
    assert await conn.fetchval("SELECT count(*) FROM pings") == 2
    assert p.metrics.rejected_count("poor_accuracy") == 1
    # A change applies to the very next batch: no restart, no cache to expire.
    await filters.save_town_filters(conn, "kouvola", TownFilters())
    await p.process(pool, [message("plow-1", fix(3, accuracy=80.0))])
    assert await conn.fetchval("SELECT count(*) FROM pings") == 3


async def test_the_database_refuses_nonsense_settings(conn: asyncpg.Connection) -> None:
    town = await add_town(conn)
    for column, value in [("disabled", ["no_such_filter"]), ("max_speed_mps", -1.0),
                          ("max_age_s", float("inf")), ("max_accuracy_m", float("nan"))]:
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute(
                f"INSERT INTO town_filter_settings (town_id, {column}) VALUES ($1, $2)",
                town, value)


async def test_speed_against_stored_neighbours_by_fix_time(
    pool: asyncpg.Pool, conn: asyncpg.Connection
) -> None:
    await add_town(conn)
    await filters.save_town_filters(conn, "kouvola", TownFilters(max_speed_mps=30.0))
    p = Pipeline(IngestSettings(), IngestMetrics())
    step = 100 / DEG_M  # 100 m per 10 s
    await p.process(pool, [message("plow-1", [fix(60), fix(50, 60.87 + step)])])
    # the live fix jumps 5 km in 10 s: refused
    await p.process(pool, [message("plow-1", fix(40, 60.87 + 5000 / DEG_M))])
    # a late fix is judged against the stored fix before it in time (at 60 s ago), not
    # against the newest one: 55 s ago, 50 m on from it, is fine
    await p.process(pool, [message("plow-1", fix(55, 60.87 + step / 2))])
    # the next real fix continues the track
    await p.process(pool, [message("plow-1", fix(40, 60.87 + 2 * step))])
    assert await reasons(conn) == [("impossible_speed", "kouvola")]
    assert await conn.fetchval("SELECT count(*) FROM pings") == 4
    detail = await conn.fetchval("SELECT detail FROM rejected_pings")
    assert "m/s > 30 m/s" in detail


async def test_a_bad_stored_fix_blocks_a_vehicle_only_within_the_window(
    pool: asyncpg.Pool, conn: asyncpg.Connection
) -> None:
    await add_town(conn)
    p = Pipeline(IngestSettings(), IngestMetrics())
    # stored while the town had no speed filter: a fix 100 km off
    await p.process(pool, [message("plow-1", fix(400, 61.77))])
    await filters.save_town_filters(
        conn, "kouvola", TownFilters(max_speed_mps=30.0, speed_window_s=120.0))
    await p.process(pool, [message("plow-1", fix(350)), message("plow-1", fix(200))])
    assert [r for r, _ in await reasons(conn)] == ["impossible_speed"]
    assert await conn.fetchval("SELECT count(*) FROM pings") == 2


async def test_real_drammen_tracks_pass_the_speed_filter_and_an_outlier_does_not(
    pool: asyncpg.Pool, conn: asyncpg.Connection
) -> None:
    await add_town(conn, "drammen", "Drammen")
    await filters.save_town_filters(conn, "drammen", TownFilters(max_speed_mps=30.0))
    doc = orjson.loads(shared_data("plow", "drammen", "raw_feed_sample.json").read_bytes())
    # Move one real point 3 km north: the plow cannot have been there.
    point = doc["features"][5]["geometry"]["coordinates"][40]
    point[1] += 3000 / DEG_M
    p = Pipeline(IngestSettings(), IngestMetrics(),
                 clock=lambda: datetime(2023, 2, 14, tzinfo=UTC))
    batch = await p.process(pool, [Message("drammen/drammen", orjson.dumps(doc),
                                           datetime.now(UTC))])
    assert len(batch.stored) == 576
    assert [(r.reason, r.vehicle) for r in batch.rejections
            if r.reason != "not_a_position"] == [("impossible_speed", "815597455")]
