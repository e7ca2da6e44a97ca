"""REST resources, pages and security headers, served by the real app."""

from __future__ import annotations

import asyncpg
import httpx

from tests.support import DISPATCH_AUTH, LiveServer, add_town, make_settings


async def seed(conn: asyncpg.Connection) -> None:
    town = await add_town(conn)
    await add_town(conn, "drammen", "Drammen")
    await conn.execute(
        """INSERT INTO street_segments (town_id, source_id, name, road_class, oneway,
               length_m, priority, geom)
           VALUES ($1, 'w1:0', 'Kauppalankatu', 'residential', false, 120.5, 3,
                   ST_GeomFromText('LINESTRING(26.70 60.86, 26.71 60.87)', 4326))""",
        town,
    )
    vehicle = await conn.fetchval(
        "INSERT INTO vehicles (town_id, ident, label) VALUES ($1, 'plow-1', 'Plow 1') "
        "RETURNING id", town)
    await conn.execute(
        """INSERT INTO vehicle_positions (vehicle_id, town_id, fix_time, received_at, geom,
               speed_mps, heading_deg, plow_down)
           VALUES ($1, $2, '2026-11-29T10:00:00Z', now(),
                   ST_SetSRID(ST_MakePoint(26.705, 60.865), 4326), 5.5, 180, true)""",
        vehicle, town)


async def test_rest_resources(database: str, conn: asyncpg.Connection) -> None:
    await seed(conn)
    async with LiveServer(make_settings(database)) as srv, httpx.AsyncClient(
        base_url=srv.url
    ) as http:
        towns = (await http.get("/api/towns")).json()
        assert [t["slug"] for t in towns] == ["drammen", "kouvola"]
        kouvola = (await http.get("/api/towns/kouvola")).json()
        assert kouvola["bbox"] == [26.70, 60.86, 26.71, 60.87]
        assert kouvola["segments"] == 1 and kouvola["vehicles"] == 1
        assert kouvola["storm"] is None
        assert (await http.get("/api/towns/drammen")).json()["bbox"] is None

        r = await http.get("/api/towns/kouvola/streets")
        assert r.headers["content-type"] == "application/geo+json"
        [feature] = r.json()["features"]
        assert feature["properties"]["name"] == "Kauppalankatu"
        # No service status here: it would bypass the town's public delay.
        assert "last_service" not in feature["properties"]
        assert feature["geometry"]["coordinates"] == [[26.7, 60.86], [26.71, 60.87]]

        assert (await http.get("/api/towns/kouvola/vehicles")).status_code == 401
        [v] = (await http.get("/api/towns/kouvola/vehicles", headers=DISPATCH_AUTH)).json()
        assert v == {"id": "plow-1", "label": "Plow 1", "time": "2026-11-29T10:00:00+00:00",
                     "lat": 60.865, "lon": 26.705, "speed": 5.5, "heading": 180.0,
                     "plow": True, "spreader": None}


async def test_errors_are_plain_and_pages_are_hardened(database: str) -> None:
    async with LiveServer(make_settings(database)) as srv, httpx.AsyncClient(
        base_url=srv.url
    ) as http:
        r = await http.get("/api/towns/nowhere")
        assert r.status_code == 404 and r.json() == {"detail": "no town 'nowhere'"}
        assert (await http.get("/api/towns/Bad%20Slug")).status_code == 422
        r = await http.get("/healthz")
        assert r.status_code == 200 and r.json() == {"status": "ok"}
        r = await http.get("/t/kouvola/")
        assert r.status_code == 200 and "text/html" in r.headers["content-type"]
        csp = r.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert r.headers["x-content-type-options"] == "nosniff"
        # What npm installed is not part of the site.
        assert (await http.get("/static/package.json")).status_code == 404
        assert (await http.get("/static/node_modules/maplibre-gl/package.json")).status_code \
            == 404
        r = await http.post("/api/towns", content=b"x" * 100_000)
        assert r.status_code == 413
        assert "plowshare_ws_clients" in (await http.get("/metrics")).text
        assert (await http.get("/openapi.json")).json()["info"]["title"] == "plowshare"
