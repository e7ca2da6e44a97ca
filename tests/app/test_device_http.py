"""The OsmAnd / Traccar Client HTTP endpoint on a real PostGIS: per-device tokens, and
fixes written through the real ingest pipeline."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import orjson
import pytest

from app.api.device_http import create_device_app, strip_token
from app.cli_vehicles import add_vehicle, revoke_vehicle
from app.devices import IssuedCredentials
from tests.support import add_town, make_settings

URL = "/api/devices/osmand"


@pytest.fixture
async def http(database: str) -> AsyncIterator[httpx.AsyncClient]:
    app = create_device_app(make_settings(database))
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://device") as client:
        yield client


@pytest.fixture
async def creds(conn: asyncpg.Connection) -> IssuedCredentials:
    await add_town(conn)
    await add_vehicle(conn, None, "plowshare", "kouvola", "plow-2", None)
    return await add_vehicle(conn, None, "plowshare", "kouvola", "plow-1", "Plow 1")


def params(**extra: object) -> dict[str, str]:
    t = int((datetime.now(UTC) - timedelta(seconds=30)).timestamp())
    base: dict[str, object] = {"id": "plow-1", "timestamp": t, "lat": 60.868, "lon": 26.704,
                               "speed": 10, "bearing": 90, "altitude": 80, "accuracy": 5,
                               "batt": 88, "blade": "down"}
    return {k: str(v) for k, v in {**base, **extra}.items()}


def bearer(creds: IssuedCredentials) -> dict[str, str]:
    return {"Authorization": f"Bearer {creds.http_token}"}


def needs_decoder(r: httpx.Response) -> None:
    """The OsmAnd decoder belongs to ingest/formats (another change); until the pipeline
    routes osmand/… topics to it, every fix comes back 400 bad_topic."""
    if r.status_code == 400 and r.json().get("reasons") == ["bad_topic"]:
        pytest.xfail("the pipeline does not decode osmand/<town>/<vehicle> yet")


async def test_a_fix_with_a_bearer_token_is_stored(
    http: httpx.AsyncClient, creds: IssuedCredentials, conn: asyncpg.Connection
) -> None:
    r = await http.get(URL, params=params(), headers=bearer(creds))
    needs_decoder(r)
    assert r.status_code == 200, r.text
    row = await conn.fetchrow(
        "SELECT v.ident, ST_Y(p.geom) AS lat, p.plow_down, p.speed_mps FROM pings p "
        "JOIN vehicles v ON v.id = p.vehicle_id")
    assert row is not None and row["ident"] == "plow-1" and row["plow_down"] is True
    assert row["lat"] == pytest.approx(60.868)
    assert row["speed_mps"] == pytest.approx(10 * 1852 / 3600, rel=1e-3)  # knots
    # Sent again (a client retrying after a lost answer): still 200, stored once.
    again = await http.get(URL, params=params(timestamp=r.request.url.params["timestamp"]),
                           headers=bearer(creds))
    assert again.status_code == 200 and again.json()["stored"] == 0
    assert await conn.fetchval("SELECT count(*) FROM pings") == 1


async def test_the_token_may_come_as_a_query_parameter_and_is_never_stored(
    http: httpx.AsyncClient, creds: IssuedCredentials, conn: asyncpg.Connection
) -> None:
    good = await http.post(URL, params={**params(), "token": creds.http_token})
    bad = await http.post(URL, params={**params(lat="999"), "token": creds.http_token})
    needs_decoder(good)
    assert good.status_code == 200, good.text
    assert bad.status_code == 400 and bad.json()["reasons"] == ["bad_coordinates"]
    token = creds.http_token.encode()
    for sql in ("SELECT raw::text FROM pings", "SELECT payload FROM rejected_pings",
                "SELECT topic || coalesce(detail, '') FROM rejected_pings"):
        for value in [r[0] for r in await conn.fetch(sql)]:
            assert token not in (value if isinstance(value, bytes) else value.encode())
    assert await conn.fetchval("SELECT topic FROM rejected_pings") == \
        "osmand/kouvola/plow-1"


async def test_a_form_body_and_a_json_body_are_accepted(
    http: httpx.AsyncClient, creds: IssuedCredentials, conn: asyncpg.Connection
) -> None:
    form = await http.post(URL, data=params(), headers=bearer(creds))
    needs_decoder(form)
    assert form.status_code == 200, form.text
    t = (datetime.now(UTC) - timedelta(seconds=10)).isoformat().replace("+00:00", "Z")
    body = {"device_id": "plow-1",
            "location": {"timestamp": t, "coords": {"latitude": 60.869, "longitude": 26.71,
                                                    "accuracy": 4.8, "speed": 8.3,
                                                    "heading": 271.4}},
            "is_moving": True, "extras": {"blade": "down"}}
    js = await http.post(URL, content=orjson.dumps(body),
                         headers={**bearer(creds), "Content-Type": "application/json"})
    assert js.status_code == 200, js.text
    assert await conn.fetchval("SELECT count(*) FROM pings") == 2


async def test_missing_unknown_or_wrong_tokens_get_401(
    http: httpx.AsyncClient, creds: IssuedCredentials, conn: asyncpg.Connection
) -> None:
    token = creds.http_token
    tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    unknown = "pst_0123456789abcdef_" + token.split("_", 2)[2]
    cases: list[tuple[dict[str, str], dict[str, str]]] = [
        ({}, {}),
        ({}, {"Authorization": "Bearer"}),
        ({}, {"Authorization": f"Basic {token}"}),
        ({}, {"Authorization": "Bearer not-a-token"}),
        ({}, {"Authorization": f"Bearer {unknown}"}),
        ({}, {"Authorization": f"Bearer {tampered}"}),
        ({"token": tampered}, {}),
        ({"token": token}, {"Authorization": f"Bearer {tampered}"}),  # two different
    ]
    for query, headers in cases:
        r = await http.get(URL, params={**params(), **query}, headers=headers)
        assert r.status_code == 401, (query, headers, r.text)
        assert r.headers["www-authenticate"].startswith("Bearer")
    assert await conn.fetchval("SELECT count(*) FROM pings") == 0
    assert await conn.fetchval("SELECT count(*) FROM rejected_pings") == 0


async def test_a_token_for_another_vehicle_id_gets_403(
    http: httpx.AsyncClient, creds: IssuedCredentials, conn: asyncpg.Connection
) -> None:
    for query in (params(id="plow-2"), params(deviceid="plow-2")):
        r = await http.get(URL, params=query, headers=bearer(creds))
        assert r.status_code == 403, r.text
    body = orjson.dumps({"device_id": "plow-2", "location": {}})
    r = await http.post(URL, content=body, headers={**bearer(creds),
                                                    "Content-Type": "application/json"})
    assert r.status_code == 403
    # Refused, but never dropped: each kept in quarantine with its reason.
    assert await conn.fetchval("SELECT array_agg(DISTINCT reason) FROM rejected_pings") == [
        "vehicle_mismatch"]
    assert await conn.fetchval("SELECT count(*) FROM rejected_pings") == 3
    assert await conn.fetchval("SELECT count(*) FROM pings") == 0


async def test_a_revoked_token_gets_403_at_once(
    http: httpx.AsyncClient, creds: IssuedCredentials, conn: asyncpg.Connection
) -> None:
    first = await http.get(URL, params=params(), headers=bearer(creds))
    assert first.status_code in (200, 400)  # authenticated (400 until the decoder lands)
    await revoke_vehicle(conn, None, "kouvola", "plow-1")
    # The verifier remembers the token it checked; the revocation still counts at once.
    r = await http.get(URL, params=params(timestamp="1"), headers=bearer(creds))
    assert r.status_code == 403, r.text


async def test_an_oversized_request_gets_413(
    http: httpx.AsyncClient, creds: IssuedCredentials, conn: asyncpg.Connection
) -> None:
    r = await http.post(URL, content=b"lat=60.8&" + b"x" * (300 * 1024),
                        headers={**bearer(creds),
                                 "Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 413
    assert await conn.fetchval("SELECT count(*) FROM pings") == 0


async def test_tokens_are_stored_as_argon2id_hashes_only(
    creds: IssuedCredentials, conn: asyncpg.Connection
) -> None:
    row = await conn.fetchrow("SELECT * FROM device_credentials d JOIN vehicles v "
                              "ON v.id = d.vehicle_id WHERE v.ident = 'plow-1'")
    assert row is not None and row["token_hash"].startswith("$argon2id$")
    secret = creds.http_token.split("_", 2)[2]
    assert all(secret not in str(v) for v in row.values())


def test_strip_token_keeps_everything_else_byte_for_byte() -> None:
    raw = b"id=plow-1&token=pst_x&lat=60.1&timestamp=2026-11-29T07%3A15%3A02%2B02%3A00"
    assert strip_token(raw) == b"id=plow-1&lat=60.1&timestamp=2026-11-29T07%3A15%3A02%2B02%3A00"
    assert strip_token(b"to%6Ben=a&lat=1&token") == b"lat=1"
    assert strip_token(b"") == b""
