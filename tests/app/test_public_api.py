"""The answer card and its evidence, problem reports (validation, rate limit, the
dispatcher's read), open data in GeoJSON and CSV, storms and rules over the dispatch API."""

from __future__ import annotations

import csv
import dataclasses
import io

import asyncpg
import httpx

from app.public_settings import PublicSettings
from app.settings import CoverageSettings
from app.storms import start_storm
from tests.public_support import add_vehicle, ago, seed_town, serve
from tests.support import LiveServer, make_settings


async def test_card_status_evidence_and_outlook(database: str, conn: asyncpg.Connection
                                                ) -> None:
    town, ids = await seed_town(conn)
    plow = await add_vehicle(conn, town, "plow-7")
    await start_storm(conn, "kouvola", "January storm", at=ago(hours=6))
    await serve(conn, town, "kouvola", ids["k1"], plow, ago(hours=3))
    await serve(conn, town, "kouvola", ids["k1"], plow, ago(minutes=42), confidence=0.8)
    await serve(conn, town, "kouvola", ids["o1"], plow, ago(hours=1), plowed=False,
                salted=True)
    async with LiveServer(make_settings(database)) as srv, httpx.AsyncClient(
        base_url=srv.url
    ) as http:
        card = (await http.get(f"/api/towns/kouvola/segments/{ids['k1']}")).json()
        assert card["segment"]["name"] == "Kauppalankatu" and card["segment"]["priority"] == 1
        assert card["status"]["state"] == "plowed" and card["status"]["passes"] == 2
        assert card["storm"]["name"] == "January storm" and card["storm"]["running"]
        newest, older = card["evidence"]
        assert newest["plowed"] and newest["confidence"] == 0.8
        assert newest["ended_at"] == card["status"]["last_service"]
        # The vehicle is named by pseudonym, never by its fleet ident.
        assert newest["vehicle"].startswith("Plow ") and "plow-7" not in str(card)
        assert newest["vehicle"] == older["vehicle"]  # stable within a storm
        classes = {c["priority"]: c for c in card["outlook"]}
        assert classes[1]["serviced_pct"] == 50 and classes[1]["blocks"] == 2
        # By length, not by count: Oak Street's west block is 326 m of 1097 m.
        assert classes[3]["serviced_pct"] == 29 and classes[3]["plowed_pct"] == 0

        salted = (await http.get(f"/api/towns/kouvola/segments/{ids['o1']}")).json()
        assert salted["status"]["state"] == "salted"
        never = (await http.get(f"/api/towns/kouvola/segments/{ids['f1']}")).json()
        assert never["status"] == {"state": "none", "first_service": None,
                                   "last_service": None, "last_plowed": None,
                                   "last_salted": None, "passes": 0}
        assert never["evidence"] == []

        street = (await http.get("/api/towns/kouvola/street-status",
                                 params={"name": "Oak Street"})).json()
        assert [b["state"] for b in street["blocks"]] == ["salted", "none"]
        assert street["priority"] == 3
        assert (await http.get("/api/towns/kouvola/segments/999999")).status_code == 404
        assert (await http.get("/api/towns/kouvola/street-status",
                               params={"name": "Nowhere"})).status_code == 404

        config = (await http.get("/api/towns/kouvola/public")).json()
        assert config["rules"]["bins_min"] == [60, 180, 360, 720]
        assert config["rules"]["delay_s"] == 0 and config["storm"]["running"]
        assert config["tiles"] == "/tiles/kouvola/{z}/{x}/{y}.pbf"


async def test_problem_reports(database: str, conn: asyncpg.Connection) -> None:
    town, ids = await seed_town(conn)
    await start_storm(conn, "kouvola")
    async with LiveServer(make_settings(database)) as srv, httpx.AsyncClient(
        base_url=srv.url
    ) as http:
        srv.app.state.public = PublicSettings(report_limit=3, report_window_s=3600,
                                              dispatch_token=None)
        r = await http.post("/api/towns/kouvola/reports",
                            json={"segment_id": ids["f1"], "description": "  deep snow  "})
        assert r.status_code == 201, r.text
        assert r.json()["status"] == "open" and r.json()["service_request_id"]

        # Validation: unknown fields, bad codes, too long, another town's or no segment.
        bad = [{"segment_id": ids["f1"], "email": "me@example.org"},
               {"segment_id": ids["f1"], "service_code": "angry"},
               {"segment_id": ids["f1"], "description": "x" * 501},
               {"segment_id": 0}, {}]
        for body in bad:
            assert (await http.post("/api/towns/kouvola/reports", json=body)).status_code \
                == 422, body
        missing = await http.post("/api/towns/kouvola/reports", json={"segment_id": 999999})
        assert missing.status_code == 422 and "no street segment" in missing.text

        # Rate limit: the limit counts attempts per client, the fourth is refused.
        ok = await http.post("/api/towns/kouvola/reports",
                             json={"segment_id": ids["k1"], "service_code": "blocked"})
        assert ok.status_code == 201
        limited = await http.post("/api/towns/kouvola/reports", json={"segment_id": ids["k1"]})
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) > 0
        assert await conn.fetchval("SELECT count(*) FROM problem_reports") == 2
        # Nothing identifying is kept: only a salted hash, and only for the window.
        keys = await conn.fetch("SELECT client_key FROM report_limits")
        assert len(keys) == 1 and b"127.0.0.1" not in keys[0]["client_key"]

        # The dispatch API is off until a token is configured.
        assert (await http.get("/api/dispatch/towns/kouvola/reports")).status_code == 403
        srv.app.state.public = PublicSettings(report_limit=3, report_window_s=3600,
                                              dispatch_token="d1spatch")
        listed = (await http.get("/api/dispatch/towns/kouvola/reports",
                                 headers={"Authorization": "Bearer d1spatch"})).json()
        assert [x["service_code"] for x in listed] == ["blocked", "not_plowed"]
        first = listed[1]
        assert first["description"] == "deep snow" and first["address"] == "Fifth Avenue"
        assert first["status"] == "open" and first["segment_id"] == ids["f1"]
        assert first["passes_at_report"] == 0 and first["storm_id"] is not None
        assert {"service_request_id", "requested_datetime", "lat", "long",
                "service_name"} <= set(first)
        assert town


async def test_open_data_geojson_and_csv(database: str, conn: asyncpg.Connection) -> None:
    town, ids = await seed_town(conn)
    plow = await add_vehicle(conn, town, "plow-1")
    await start_storm(conn, "kouvola", at=ago(hours=5))
    await serve(conn, town, "kouvola", ids["k1"], plow, ago(hours=2))
    await serve(conn, town, "kouvola", ids["s1"], plow, ago(minutes=10))
    async with LiveServer(make_settings(database)) as srv, httpx.AsyncClient(
        base_url=srv.url
    ) as http:
        r = await http.get("/api/towns/kouvola/segments")
        assert r.headers["content-type"] == "application/geo+json"
        feats = {f["id"]: f for f in r.json()["features"]}
        assert set(feats) == set(ids.values())
        k1 = feats[ids["k1"]]["properties"]
        assert k1["status"] == "plowed" and k1["town"] == "kouvola" and k1["passes"] == 1
        assert feats[ids["f1"]]["properties"]["status"] == "none"
        assert feats[ids["k1"]]["geometry"]["type"] == "LineString"

        since = ago(hours=1).isoformat()
        recent = (await http.get("/api/towns/kouvola/segments", params={"since": since})).json()
        assert [f["id"] for f in recent["features"]] == [ids["s1"]]
        box = (await http.get("/api/towns/kouvola/segments",
                              params={"bbox": "26.699,60.868,26.713,60.870"})).json()
        assert {f["id"] for f in box["features"]} == {ids["o1"], ids["o2"]}

        text = (await http.get("/api/towns/kouvola/segments", params={"format": "csv"}))
        assert text.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(text.text)))
        assert len(rows) == len(ids) and rows[0]["wkt"].startswith("LINESTRING")
        assert {r["segment_id"]: r["status"] for r in rows}[str(ids["k1"])] == "plowed"

        assert (await http.get("/api/towns/kouvola/segments",
                               params={"bbox": "1,2,3"})).status_code == 422
        assert (await http.get("/api/towns/kouvola/segments",
                               params={"since": "2026-01-01T00:00:00"})).status_code == 422
        schema = (await http.get("/openapi.json")).json()
        assert "/api/towns/{slug}/segments" in schema["paths"]
        assert "/tiles/{slug}/{z}/{x}/{y}.pbf" in schema["paths"]


async def test_dispatch_storms_rules_and_token(database: str, conn: asyncpg.Connection
                                               ) -> None:
    await seed_town(conn)
    async with LiveServer(make_settings(database)) as srv, httpx.AsyncClient(
        base_url=srv.url
    ) as http:
        srv.app.state.public = PublicSettings(dispatch_token="s3cret")
        base = "/api/dispatch/towns/kouvola"
        assert (await http.post(f"{base}/storms/start", json={})).status_code == 401
        auth = {"Authorization": "Bearer s3cret"}
        assert (await http.post(f"{base}/storms/start", json={},
                                headers={"Authorization": "Bearer nope"})).status_code == 401
        started = await http.post(f"{base}/storms/start", json={"name": "Big one"},
                                  headers=auth)
        assert started.status_code == 201 and started.json()["running"]
        again = await http.post(f"{base}/storms/start", json={}, headers=auth)
        assert again.status_code == 422 and "already running" in again.text
        town = (await http.get("/api/towns/kouvola/public")).json()
        assert town["storm"]["name"] == "Big one" and town["storm"]["running"]
        ended = await http.post(f"{base}/storms/end", headers=auth)
        assert ended.status_code == 200 and not ended.json()["running"]
        town = (await http.get("/api/towns/kouvola/public")).json()
        assert town["storm"]["name"] == "Big one" and not town["storm"]["running"]
        assert (await http.post(f"{base}/storms/end", headers=auth)).status_code == 404

        r = await http.patch(f"{base}/public-rules", json={"delay_s": 120,
                                                           "bins_min": [30, 90]},
                             headers=auth)
        assert r.status_code == 200 and r.json()["delay_s"] == 120
        assert r.json()["pseudonymous"] is True
        config = (await http.get("/api/towns/kouvola/public")).json()["rules"]
        assert config["bins_min"] == [30, 90]
        # Off-storm delay applies now that the storm has ended (default 0).
        assert config["delay_s"] == 0
        for bad in ({"bins_min": [90, 30]}, {"delay_s": 4000},
                    {"base_style_url": "https://tiles.example.org/style.json"},
                    {"salt": "x"}):
            assert (await http.patch(f"{base}/public-rules", json=bad,
                                     headers=auth)).status_code == 422, bad
        depot = await http.post(f"{base}/depots", headers=auth, json={
            "name": "Main depot", "radius_m": 150,
            "geometry": {"type": "Point", "coordinates": [26.70, 60.87]}})
        assert depot.status_code == 201
        line = await http.post(f"{base}/depots", headers=auth, json={
            "name": "Bad", "geometry": {"type": "LineString",
                                        "coordinates": [[26.7, 60.8], [26.8, 60.9]]}})
        assert line.status_code == 422
        assert len((await http.get(f"{base}/depots", headers=auth)).json()) == 1
        assert (await http.delete(f"{base}/depots/{depot.json()['id']}",
                                  headers=auth)).status_code == 204
        assert (await http.get(f"{base}/reports")).status_code == 401


async def test_dispatch_matching_settings_are_checked_and_kept(
    database: str, conn: asyncpg.Connection
) -> None:
    await seed_town(conn)
    # The deployment's own change: every town's matcher starts from it.
    settings = dataclasses.replace(make_settings(database),
                                   coverage=CoverageSettings(match={"sigma_m": 6.0}))
    async with LiveServer(settings) as srv, httpx.AsyncClient(base_url=srv.url) as http:
        srv.app.state.public = PublicSettings(dispatch_token="s3cret")
        url = "/api/dispatch/towns/kouvola/matching"
        auth = {"Authorization": "Bearer s3cret"}
        assert (await http.get(url)).status_code == 401
        assert (await http.patch(url, json={"map_gap_m": 0})).status_code == 401
        got = (await http.get(url, headers=auth)).json()
        assert got["town"] == {} and got["problem"] is None
        assert got["effective"]["sigma_m"] == 6.0 and got["effective"]["map_gap_m"] == 15.0
        assert got["ranges"]["map_gap_m"] == [0.0, 50.0]

        r = await http.patch(url, json={"map_gap_m": 0, "lag": 12}, headers=auth)
        assert r.status_code == 200, r.text
        assert r.json()["town"] == {"map_gap_m": 0, "lag": 12}
        assert r.json()["effective"]["map_gap_m"] == 0 and r.json()["effective"]["lag"] == 12
        stored = await conn.fetchval(
            """SELECT s.match_config FROM town_settings s JOIN towns t ON t.id = s.town_id
                WHERE t.slug = 'kouvola'""")
        assert stored == {"map_gap_m": 0, "lag": 12}
        for bad, says in (({"beta_m": 3}, "not a matcher setting"),
                          ({"map_gap_m": 99}, "between 0 and 50"),
                          ({"lag": 2.5}, "whole number"),
                          ({"map_gap_m": "wide"}, "valid number"),
                          ({"map_gap_m": "6"}, "valid number"),  # not read as 6
                          ({"lag": True}, "valid number")):  # not read as 1
            r = await http.patch(url, json=bad, headers=auth)
            assert r.status_code == 422 and says in r.text, (bad, r.text)
        # Nothing of a refused change was kept.
        assert (await http.get(url, headers=auth)).json()["town"] == {"map_gap_m": 0, "lag": 12}
        r = await http.patch(url, json={"map_gap_m": None}, headers=auth)
        assert r.json()["town"] == {"lag": 12} and r.json()["effective"]["map_gap_m"] == 15.0
        assert (await http.get("/api/dispatch/towns/nowhere/matching",
                               headers=auth)).status_code == 404
        r = await http.patch(url, json=[1, 2], headers=auth)  # not an object
        assert r.status_code == 422
        # Stored by hand past these checks: shown with the problem, not a server error.
        await conn.execute(
            "UPDATE town_settings SET match_config = $1 WHERE town_id = "
            "(SELECT id FROM towns WHERE slug = 'kouvola')", {"map_gap_m": 500})
        got = (await http.get(url, headers=auth)).json()
        assert got["town"] == {"map_gap_m": 500} and got["effective"]["map_gap_m"] == 15.0
        assert "between 0 and 50" in got["problem"]
