"""Vector tiles of street status, decoded with mapbox-vector-tile: the right features,
ids and times; generalised when zoomed out; cache headers and validators."""

from __future__ import annotations

import math

import asyncpg
import httpx
import mapbox_vector_tile

from app.storms import start_storm
from tests.public_support import add_vehicle, ago, seed_town, serve
from tests.support import LiveServer, make_settings


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


async def town_tiles(http: httpx.AsyncClient, z: int, **params: object
                     ) -> dict[int, dict[str, object]]:
    """Every tile over the test town at zoom z, merged (a block cut by a tile edge is in
    both, with the same id and properties)."""
    (x0, y0), (x1, y1) = tile_of(26.700, 60.869, z), tile_of(26.712, 60.862, z)
    merged: dict[int, dict[str, object]] = {}
    for x in range(x0, x1 + 1):
        for y in range(y0, y1 + 1):
            r = await http.get(f"/tiles/kouvola/{z}/{x}/{y}.pbf", params=params)
            assert r.status_code == 200, r.text
            merged.update(features(r.content))
    return merged


def features(body: bytes) -> dict[int, dict[str, object]]:
    layers = mapbox_vector_tile.decode(body)
    if not layers:
        return {}
    assert set(layers) == {"streets"}
    return {f["id"]: f["properties"] for f in layers["streets"]["features"]}


async def test_tile_contents_follow_the_storm(database: str, conn: asyncpg.Connection) -> None:
    town, ids = await seed_town(conn)
    plow = await add_vehicle(conn, town, "plow-1")
    await start_storm(conn, "kouvola", "First snow", at=ago(hours=5))
    plowed_at, salted_at = ago(minutes=30), ago(hours=2)
    await serve(conn, town, "kouvola", ids["k1"], plow, plowed_at)
    await serve(conn, town, "kouvola", ids["s1"], plow, salted_at, plowed=False, salted=True)
    x, y = tile_of(26.706, 60.866, 13)
    async with LiveServer(make_settings(database)) as srv, httpx.AsyncClient(
        base_url=srv.url
    ) as http:
        r = await http.get(f"/tiles/kouvola/13/{x}/{y}.pbf")
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "application/vnd.mapbox-vector-tile"
        assert r.headers["cache-control"] == "public, max-age=0, must-revalidate"
        assert features(r.content)
        got = await town_tiles(http, 16)
        assert set(got) == set(ids.values())  # every block of this small town, by id
        k1 = got[ids["k1"]]
        assert k1["name"] == "Kauppalankatu" and k1["priority"] == 1 and k1["passes"] == 1
        assert k1["last"] == k1["plowed"] == int(plowed_at.timestamp())
        assert "salted" not in k1
        s1 = got[ids["s1"]]
        assert s1["salted"] == int(salted_at.timestamp()) and "plowed" not in s1
        untouched = got[ids["o1"]]
        assert untouched["passes"] == 0 and "last" not in untouched

        # Revalidation: same content, same validator, 304 without a body.
        again = await http.get(f"/tiles/kouvola/13/{x}/{y}.pbf",
                               headers={"If-None-Match": r.headers["etag"]})
        assert again.status_code == 304 and again.content == b""
        versioned = await http.get(f"/tiles/kouvola/13/{x}/{y}.pbf", params={"v": "1.0.7"})
        assert versioned.headers["cache-control"] == "public, max-age=3600"

        # Zoomed out, only the main routes.
        assert set(await town_tiles(http, 9)) == {ids["k1"], ids["k2"]}
        assert set(await town_tiles(http, 11)) == {ids["k1"], ids["k2"], ids["s1"]}
        # Nowhere near the town: an empty tile, still a valid response.
        x0, y0 = tile_of(-76.15, 43.05, 13)
        empty = await http.get(f"/tiles/kouvola/13/{x0}/{y0}.pbf")
        assert empty.status_code == 200 and features(empty.content) == {}

        # A new storm: status counts from its start, so the tile shows nothing serviced.
        await conn.execute("UPDATE storms SET ended_at = now()")
        srv.app.state.public_rules.forget("kouvola")
        await start_storm(conn, "kouvola", "Second")
        srv.app.state.public_rules.forget("kouvola")
        fresh = await town_tiles(http, 14)
        assert len(fresh) == len(ids) and all(f["passes"] == 0 for f in fresh.values())
        # The first storm's tiles stay available by id.
        first = await conn.fetchval("SELECT min(id) FROM storms")
        old = await town_tiles(http, 14, storm=first)
        assert old[ids["k1"]]["passes"] == 1

        assert (await http.get("/tiles/kouvola/15/99999/1.pbf")).status_code == 404
        assert (await http.get(f"/tiles/kouvola/13/{x}/{y}.pbf",
                               params={"storm": 999})).status_code == 404
        assert (await http.get(f"/tiles/atlantis/13/{x}/{y}.pbf")).status_code == 404
