"""API fuzz: schemathesis generates requests from the real app's OpenAPI spec and sends
them to the real app (create_app under uvicorn, tests.support.LiveServer) on a seeded
test database; no operation may answer 5xx. Then the OsmAnd device endpoint, whose body
the spec cannot describe, gets generated query strings, forms and JSON under a real
device token: it answers 200/400/403/413, never 5xx, and nothing is lost.

Bounded: about 30 examples per operation, well under a minute in all.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import asyncpg
import httpx
import orjson
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from app.cli_vehicles import add_vehicle
from app.db import create_pool
from app.settings import DatabaseSettings, IngestSettings
from ingest.metrics import IngestMetrics
from ingest.model import Message
from ingest.pipeline import Pipeline
from tests.support import LiveServer, add_town, make_settings

# Bounded and repeatable for CI (the same examples every run, so a red run is never luck);
# PLOWSHARE_FUZZ_EXAMPLES=300 digs deeper, with fresh random examples each time.
EXAMPLES = int(os.environ.get("PLOWSHARE_FUZZ_EXAMPLES", "30"))
BOUNDED = settings(max_examples=EXAMPLES, deadline=None, database=None,
                   derandomize="PLOWSHARE_FUZZ_EXAMPLES" not in os.environ,
                   phases=[Phase.explicit, Phase.generate],  # no shrinking: report, go on
                   suppress_health_check=list(HealthCheck))


async def seed(conn: asyncpg.Connection, database: str) -> str:
    """A town with a street, a storm, plows that have reported; returns a device token."""
    town = await add_town(conn)
    await add_town(conn, "drammen", "Drammen")
    await conn.execute(
        """INSERT INTO street_segments (town_id, source_id, name, road_class, oneway,
               length_m, priority, geom)
           VALUES ($1, 'w1:0', 'Kauppalankatu', 'residential', false, 120.5, 3,
                   ST_GeomFromText('LINESTRING(26.70 60.86, 26.71 60.87)', 4326))""", town)
    await conn.execute("INSERT INTO storms (town_id, name) VALUES ($1, 'First snow')", town)
    creds = await add_vehicle(conn, None, "plowshare", "kouvola", "plow-1", "Plow 1")
    now = datetime.now(UTC)
    fixes = [{"time": (now - timedelta(seconds=s)).isoformat(), "lat": 60.86 + s * 1e-5,
              "lon": 26.70 + s * 1e-5, "plow": True} for s in range(60, 0, -10)]
    pool = await create_pool(DatabaseSettings(url=database))
    try:
        await Pipeline(IngestSettings(), IngestMetrics()).process(pool, [
            Message("plowshare/kouvola/plow-1/position", orjson.dumps(fixes), now)])
    finally:
        await pool.close()
    return creds.http_token


def fuzz_openapi(base_url: str, seeded_segment: int) -> tuple[list[str], Counter[int]]:
    """Run every operation of the spec the app serves; return one line per operation
    that answered 5xx, and how often each status was seen."""
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    failures: list[str] = []
    statuses: Counter[int] = Counter()
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @BOUNDED
        @given(case=operation.as_strategy(), real=st.booleans(), segment=st.booleans())
        def run(case: Any, real: bool, segment: bool) -> None:
            # Random slugs and ids mostly meet 404s; half the time aim at the seeded town
            # (and its street) so the handlers' real work is fuzzed too.
            params = case.path_parameters or {}
            if real and "slug" in params:
                params["slug"] = "kouvola"
                if segment and "segment" in params:
                    params["segment"] = seeded_segment
            response = case.call(base_url=base_url, timeout=30)
            statuses[response.status_code] += 1
            assert response.status_code < 500, (
                f"{case.method} {case.formatted_path} → {response.status_code}: "
                f"{response.text[:200]}\n  {case.as_curl_command()}")

        try:
            run()
        except AssertionError as exc:
            failures.append(str(exc))
    assert operations >= 15, f"only {operations} operations in the spec"
    return failures, statuses


async def test_no_operation_of_the_openapi_spec_answers_5xx(
    database: str, conn: asyncpg.Connection
) -> None:
    await seed(conn, database)
    segment = await conn.fetchval("SELECT id FROM street_segments")
    async with LiveServer(make_settings(database)) as srv:
        # schemathesis calls synchronously; the server runs on this loop meanwhile.
        failures, statuses = await asyncio.to_thread(fuzz_openapi, srv.url, segment)
    assert failures == [], "\n".join(failures)
    # The run reached the handlers, not only the validation layer.
    assert statuses[200] >= 50 and sum(statuses.values()) >= 300, statuses


# -- the device endpoint, with a real token and generated fixes --------------------------
def _device_requests(now: datetime) -> st.SearchStrategy[tuple[str, dict[str, Any]]]:
    t = int(now.timestamp())
    numbers = st.one_of(st.integers(-1000, 1000).map(str), st.floats().map(repr),
                        st.sampled_from(["60.868", "26.704", str(t), str(t * 1000), ""]))
    values = st.one_of(numbers, st.text(max_size=15), st.sampled_from(
        ["true", "false", "down", "up", "on", "plow-1", "plow-2", "2026-11-29T07:15:02Z"]))
    keys = st.sampled_from(["id", "deviceid", "timestamp", "lat", "lon", "location", "speed",
                            "bearing", "altitude", "accuracy", "valid", "blade", "spreader",
                            "batt", "x"])
    plausible = st.fixed_dictionaries(
        {"id": st.sampled_from(["plow-1", "plow-1", "plow-2"]),
         "timestamp": st.integers(t - 600, t + 60).map(str),
         "lat": st.floats(60.86, 60.88).map(repr), "lon": st.floats(26.69, 26.71).map(repr)},
        optional={"speed": numbers, "blade": values, "valid": values})
    form = st.one_of(plausible, st.dictionaries(keys, values, max_size=8)).map(urlencode)
    json_body = st.recursive(
        st.none() | st.booleans() | st.floats(allow_nan=False) | st.text(max_size=10),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
            st.sampled_from(["device_id", "location", "coords", "timestamp", "latitude",
                            "longitude", "speed", "extras", "mock"]), inner, max_size=4),
        max_leaves=15)
    return st.one_of(
        form.map(lambda q: ("GET", {"params": q})),
        form.map(lambda q: ("POST", {"content": q, "headers": {
            "content-type": "application/x-www-form-urlencoded"}})),
        json_body.map(lambda d: ("POST", {"content": orjson.dumps(d), "headers": {
            "content-type": "application/json"}})),
        st.binary(max_size=300).map(lambda b: ("POST", {"content": b})),
    )


def fuzz_device_endpoint(base_url: str, token: str) -> list[int]:
    statuses: list[int] = []
    with httpx.Client(base_url=base_url, timeout=30,
                      headers={"Authorization": f"Bearer {token}"}) as http:

        @settings(BOUNDED, max_examples=4 * EXAMPLES)
        @given(_device_requests(datetime.now(UTC)))
        def run(request: tuple[str, dict[str, Any]]) -> None:
            method, kwargs = request
            response = http.request(method, "/api/devices/osmand", **kwargs)
            assert response.status_code in (200, 400, 403, 413), (
                f"{method} {kwargs} → {response.status_code}: {response.text[:200]}")
            statuses.append(response.status_code)

        run()
    return statuses


async def test_device_endpoint_answers_every_generated_fix_without_5xx(
    database: str, conn: asyncpg.Connection
) -> None:
    token = await seed(conn, database)
    stored_before = await conn.fetchval("SELECT count(*) FROM pings")
    rejected_before = await conn.fetchval("SELECT count(*) FROM rejected_pings")
    async with LiveServer(make_settings(database)) as srv:
        statuses = await asyncio.to_thread(fuzz_device_endpoint, srv.url, token)
    assert 200 in statuses and 400 in statuses, sorted(set(statuses))
    # Every request the pipeline saw left a row: a stored fix, or a named rejection.
    stored = await conn.fetchval("SELECT count(*) FROM pings") - stored_before
    rejected = await conn.fetchval("SELECT count(*) FROM rejected_pings") - rejected_before
    assert stored + rejected >= statuses.count(200) + statuses.count(400)
    assert await conn.fetchval(
        "SELECT count(*) FROM rejected_pings WHERE reason = 'store_failed'") == 0
