"""Find my street: names with typos, accents and numbered streets; addresses (also on
the real Syracuse snow-route data); nearest block to a point."""

from __future__ import annotations

import asyncpg
import httpx
import pytest

from app.addresses import import_address_ranges
from app.importer import import_segments
from app.search import parse_address
from app.streets.geojson import read_geojson
from app.streets.load import load_segments
from tests.geo.geo_shared_data import shared_data
from tests.public_support import seed_town
from tests.support import LiveServer, add_town, make_settings


async def names(http: httpx.AsyncClient, q: str, town: str = "kouvola") -> list[str]:
    r = await http.get(f"/api/towns/{town}/search", params={"q": q})
    assert r.status_code == 200, r.text
    return [x["label"] for x in r.json()["results"]]


def test_parse_address() -> None:
    assert parse_address("123 Oak St") is not None
    a = parse_address(" 123A, Oak St ")
    assert a is not None and (a.number, a.street) == (123, "Oak St")
    assert parse_address("5th Ave") is None
    assert parse_address("123") is None
    assert parse_address("Oak St 123") is None


async def test_names_typos_accents_and_numbered_streets(
    database: str, conn: asyncpg.Connection
) -> None:
    await seed_town(conn)
    async with LiveServer(make_settings(database)) as srv, httpx.AsyncClient(
        base_url=srv.url
    ) as http:
        assert (await names(http, "Kauppalankatu"))[0] == "Kauppalankatu"
        assert (await names(http, "kauppalnkatu"))[0] == "Kauppalankatu"  # typo
        assert (await names(http, "Kaupalankatu"))[0] == "Kauppalankatu"
        assert (await names(http, "salpausselankatu"))[0] == "Salpausselänkatu"  # accent
        assert (await names(http, "Rue de l'Eglise"))[0] == "Rue de l'Église"
        assert (await names(http, "5th Ave"))[0] == "Fifth Avenue"  # numbered street
        assert (await names(http, "5th avenue"))[0] == "Fifth Avenue"
        assert (await names(http, "oak"))[0] == "Oak Street"  # partial
        assert await names(http, "zzzzqqq") == []
        r = await http.get("/api/towns/kouvola/search", params={"q": "Kauppalankatu"})
        [hit] = [x for x in r.json()["results"] if x["name"] == "Kauppalankatu"]
        assert hit["kind"] == "street" and hit["blocks"] == 2 and hit["priority"] == 1
        assert hit["bbox"] == [26.7, 60.866, 26.712, 60.866]
        assert (await http.get("/api/towns/kouvola/search", params={"q": ""})).status_code \
            == 422
        assert (await http.get("/api/towns/atlantis/search", params={"q": "x"})).status_code \
            == 404


async def test_addresses_and_nearest(database: str, conn: asyncpg.Connection) -> None:
    _, ids = await seed_town(conn)
    async with LiveServer(make_settings(database)) as srv, httpx.AsyncClient(
        base_url=srv.url
    ) as http:
        r = (await http.get("/api/towns/kouvola/search", params={"q": "250 oak st"})).json()
        first = r["results"][0]
        assert first["kind"] == "address" and first["segment"] == ids["o2"]
        assert first["side"] == "right" and first["label"] == "250 Oak Street"
        odd = (await http.get("/api/towns/kouvola/search",
                              params={"q": "151 Oak Street"})).json()["results"][0]
        assert odd["segment"] == ids["o1"] and odd["side"] == "left"
        # A number no block has: the street itself is still found by name.
        r = (await http.get("/api/towns/kouvola/search", params={"q": "999 Oak St"})).json()
        assert r["results"][0]["kind"] == "street"

        near = await http.get("/api/towns/kouvola/nearest",
                              params={"lat": 60.8641, "lon": 26.7092})
        assert near.status_code == 200, near.text
        card = near.json()
        assert card["segment"]["id"] == ids["f1"] and card["distance_m"] < 15
        far = await http.get("/api/towns/kouvola/nearest", params={"lat": 61.5, "lon": 26.7})
        assert far.status_code == 404
        assert (await http.get("/api/towns/kouvola/nearest",
                               params={"lat": 95, "lon": 0})).status_code == 422


@pytest.mark.timeout(300)
async def test_syracuse_addresses(database: str, conn: asyncpg.Connection) -> None:
    """The real Syracuse snow routes: address ranges from L_F_ADD … R_T_ADD."""
    # Fails (never skips) without the data, and honours PLOWSHARE_SHARED_DATA like
    # every other real-data test.
    syracuse = shared_data("plow", "syracuse", "snow_route_segments.geojson.gz")
    town = await add_town(conn, "syracuse", "Syracuse")
    segments = load_segments(syracuse, id_property="snowroutesegmentid",
                             name_property="roadname")
    await import_segments(conn, town, segments)
    loaded = await import_address_ranges(conn, town, read_geojson(syracuse),
                                         id_property="snowroutesegmentid")
    assert loaded > 2500
    async with LiveServer(make_settings(database)) as srv, httpx.AsyncClient(
        base_url=srv.url
    ) as http:
        async def first(q: str) -> dict[str, object]:
            r = await http.get("/api/towns/syracuse/search", params={"q": q})
            assert r.status_code == 200 and r.json()["results"], (q, r.text)
            result: dict[str, object] = r.json()["results"][0]
            return result

        oak = await first("951 Oak St")
        sid = await conn.fetchval("SELECT source_id FROM street_segments WHERE id = $1",
                                  oak["segment"])
        assert oak["name"] == "OAK ST" and sid == "SNW-479" and oak["side"] == "left"
        even = await first("950 Oak Street")  # "Street" = "ST"; even numbers on the right
        assert even["segment"] == oak["segment"] and even["side"] == "right"
        salina = await first("1750 North Salina Street")  # "North" = "N"
        assert salina["name"] == "N SALINA ST" and salina["kind"] == "address"
        third = await first("Third Avenue")
        assert third["name"] == "THIRD AV"
        assert (await first("3rd Ave"))["name"] == "THIRD AV"
        assert (await first("1st North St"))["name"] == "FIRST NORTH ST"
        assert (await first("Burnett Ave"))["name"] == "BURNET AV"  # typo
