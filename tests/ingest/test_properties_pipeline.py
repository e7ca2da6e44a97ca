"""Property of the whole pipeline against a real PostGIS: whatever mixture of formats,
towns, vehicles, times and junk arrives, every message ends stored or rejected with a
named reason — never store_failed — and the database agrees with the counters."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import asyncpg
import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.settings import IngestSettings
from ingest import filters
from ingest.filters import TownFilters
from ingest.metrics import IngestMetrics
from ingest.model import REASONS, Message
from ingest.pipeline import Pipeline
from tests.ingest.test_properties_decoders import json_values, wild
from tests.support import add_town

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
# Repeatable in CI; PLOWSHARE_HYPOTHESIS_DB_EXAMPLES=1000 digs deeper, freshly random.
EXAMPLES = int(os.environ.get("PLOWSHARE_HYPOTHESIS_DB_EXAMPLES", "60"))

towns = st.sampled_from(["kouvola", "drammen", "atlantis"])
vehicles = st.sampled_from(["plow-1", "plow-2", "519063249"])
# Fix times mostly inside the accepted window, sometimes outside it.
offsets = st.one_of(st.integers(-600, 60), st.integers(-3 * 86400, 60),
                    st.integers(-40 * 86400, 86400))
# Mostly a town's streets (so the speed filter has tracks to judge), some far away, some junk.
# (one_of would flatten `wild`'s many branches and pick junk most of the time.)
def mostly(good: st.SearchStrategy[Any], *others: st.SearchStrategy[Any]
           ) -> st.SearchStrategy[Any]:
    return st.integers(0, 9).flatmap(lambda k: good if k < 7 else st.one_of(*others))


lats = mostly(st.floats(60.86, 60.88), st.floats(59.0, 62.0), wild)
lons = mostly(st.floats(26.69, 26.71), wild)


def when(offset: int) -> datetime:
    return NOW + timedelta(seconds=offset)


native = st.builds(
    lambda town, vehicle, fixes: Message(f"plowshare/{town}/{vehicle}/position",
                                         orjson.dumps(fixes), NOW),
    towns, vehicles,
    st.lists(st.fixed_dictionaries(
        {"time": offsets.map(lambda o: when(o).isoformat()), "lat": lats, "lon": lons},
        optional={"speed": wild, "accuracy": st.floats(0, 500), "plow": st.booleans(),
                  "seq": st.integers(0, 50)}), min_size=1, max_size=5),
)
owntracks = st.builds(
    lambda town, vehicle, doc: Message(f"owntracks/{town}/{vehicle}", orjson.dumps(doc), NOW),
    towns, vehicles,
    st.one_of(
        st.fixed_dictionaries({"_type": st.just("location"), "lat": lats, "lon": lons,
                               "tst": offsets.map(lambda o: int(when(o).timestamp()))},
                              optional={"vel": wild, "acc": st.floats(0, 500),
                                        "created_at": st.integers(0, 2**33)}),
        st.fixed_dictionaries({"_type": st.sampled_from(["lwt", "transition", "card"])}),
    ),
)
osmand = st.builds(
    lambda town, vehicle, device, o, lat, lon, extra, ct: Message(
        f"osmand/{town}/{vehicle}",
        urlencode({"id": device, "timestamp": int(when(o).timestamp()), "lat": lat,
                   "lon": lon, **extra}).encode(), NOW, content_type=ct),
    towns, vehicles, st.one_of(vehicles, st.just("plow-1")), offsets, lats, lons,
    st.dictionaries(st.sampled_from(["speed", "valid", "blade", "accuracy", "note"]),
                    st.sampled_from(["1", "true", "false", "down", "x", "%00", "-3"]),
                    max_size=3),
    st.sampled_from([None, "application/x-www-form-urlencoded"]),
)
drammen = st.builds(
    lambda town, pieces: Message(f"drammen/{town}", orjson.dumps(
        {"type": "FeatureCollection", "features": pieces}), NOW),
    towns,
    st.lists(st.builds(
        lambda vehicle, state, points: {
            "type": "Feature", "properties": {"alt_vehicle": vehicle, "toggle_state": state},
            "geometry": {"type": "LineString", "coordinates": points}},
        vehicles, st.sampled_from(["SALT", "DEFAULT", "GRAVEL"]),
        st.lists(st.builds(lambda lat, lon, o: [lon, lat, 0, int(when(o).timestamp())],
                           lats, lons, offsets), min_size=1, max_size=4)),
        min_size=1, max_size=3),
)
junk = st.builds(lambda topic, payload: Message(topic, payload, NOW),
                 st.sampled_from(["plowshare/kouvola/plow-1/position", "owntracks/kouvola/x",
                                  "osmand/kouvola/plow-1", "drammen/kouvola", "nope"]),
                 st.one_of(st.binary(max_size=100), json_values.map(orjson.dumps)))
messages = st.lists(st.one_of(native, owntracks, osmand, drammen, junk), min_size=1,
                    max_size=6)


async def test_every_message_is_stored_or_rejected_by_name(
    pool: asyncpg.Pool, conn: asyncpg.Connection
) -> None:
    await add_town(conn)
    await add_town(conn, "drammen", "Drammen")
    await filters.save_town_filters(
        conn, "kouvola", TownFilters(max_speed_mps=30.0, max_accuracy_m=100.0))
    pipeline = Pipeline(IngestSettings(), IngestMetrics(), clock=lambda: NOW)
    loop = asyncio.get_running_loop()
    stored = 0

    # Hypothesis drives synchronously from a worker thread; each example's batch runs on
    # this event loop (which owns the pool) while the thread waits for it.
    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              derandomize="PLOWSHARE_HYPOTHESIS_DB_EXAMPLES" not in os.environ,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(messages)
    def run(batch_messages: list[Message]) -> None:
        nonlocal stored
        batch = asyncio.run_coroutine_threadsafe(
            pipeline.process(pool, batch_messages), loop).result(timeout=60)
        failed = [r for r in batch.rejections if r.reason == "store_failed"]
        assert not failed, failed
        assert all(r.reason in REASONS for r in batch.rejections)
        assert len(batch.stored) + len(batch.rejections) >= len(batch_messages)
        stored += len(batch.stored)

    await asyncio.to_thread(run)
    assert stored > 0, "the generated messages never produced a storable fix"
    assert await conn.fetchval("SELECT count(*) FROM pings") == stored
    by_reason: dict[str, Any] = dict(await conn.fetch(
        "SELECT reason, count(*) FROM rejected_pings GROUP BY reason"))
    assert set(by_reason) <= set(REASONS)
    for reason, count in by_reason.items():
        assert pipeline.metrics.rejected_count(reason) == count
