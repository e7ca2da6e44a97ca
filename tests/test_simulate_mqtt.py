"""`plowshare simulate` publishes a fleet over real MQTT through the reference device
client; every fix is stored and acknowledged end to end."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg

from app.broker import Broker
from app.importer import import_segments
from app.simulator import run_simulation
from app.streets.load import load_segments
from tests.faults.test_delivery import ingester
from tests.geo.geo_shared_data import shared_data
from tests.support import add_town, make_settings


async def test_simulated_fleet_over_mqtt_is_stored_and_acknowledged(
    broker: Broker, database: str, conn: asyncpg.Connection, tmp_path: Path
) -> None:
    town = await add_town(conn, "boston", "Boston")
    await import_segments(conn, town, load_segments(
        shared_data() / "osm" / "boston-downtown.osm.pbf"))
    settings = make_settings(database, broker.port)
    async with ingester(settings):
        await run_simulation(settings, town="boston", vehicles=3, interval_s=0.5,
                             speedup=4.0, duration_s=20.0, seed=5, state_dir=tmp_path)
        await asyncio.sleep(0.5)
    per_vehicle = await conn.fetch(
        """SELECT v.ident, count(*) AS n, max(p.seq) AS top, a.acked_seq,
                  bool_and(ST_DWithin(p.geom::geography, (SELECT ST_Collect(geom)
                      FROM street_segments)::geography, 15)) AS on_streets
             FROM pings p JOIN vehicles v ON v.id = p.vehicle_id
             LEFT JOIN device_acks a ON a.vehicle_id = v.id
            GROUP BY v.ident, a.acked_seq ORDER BY v.ident""")
    assert [r["ident"] for r in per_vehicle] == ["plow-1", "plow-2", "plow-3"]
    for r in per_vehicle:
        assert r["n"] >= 9 and r["top"] == r["n"] - 1  # seqs 0..n-1, none missing
        assert r["acked_seq"] == r["top"]  # everything acknowledged end to end
        assert r["on_streets"]  # the trucks drive the imported streets
    # Devices kept their sequence numbers for the next run.
    assert sorted(p.name for p in tmp_path.glob("*.sqlite")) == [
        "boston-plow-1.sqlite", "boston-plow-2.sqlite", "boston-plow-3.sqlite"]
