"""The real Drammen vendor feed decodes into the same Position model, cross-checked fix by
fix against the pings the same service exported as CSV (577 pings, 4 vehicles)."""

from __future__ import annotations

import csv
from collections import Counter
from datetime import UTC, datetime

import orjson
import pytest

from ingest.decode import Limits, decode
from ingest.model import Message
from tests.geo.geo_shared_data import shared_data

NOW = datetime(2023, 2, 14, 0, 0, tzinfo=UTC)
TOPIC = "drammen/drammen"


def msg(payload: object, topic: str = TOPIC) -> Message:
    raw = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    return Message(topic, raw, NOW)


def feed() -> bytes:
    return shared_data("plow", "drammen", "raw_feed_sample.json").read_bytes()


def test_real_feed_matches_the_exported_pings() -> None:
    positions, rejections = decode(msg(feed()), Limits())
    with shared_data("plow", "drammen", "pings_2023-02-13.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 577 and len(positions) == 577
    expected = {
        (r["vehicle"], datetime.fromtimestamp(int(r["epoch_s"]), UTC)):
            (float(r["lat"]), float(r["lon"]), r["toggle_state"] in ("SALT", "GRAVEL"))
        for r in rows
    }
    got = {(p.vehicle, p.fix_time): (p.lat, p.lon, p.spreader_on) for p in positions}
    assert got == expected
    assert Counter(p.vehicle for p in positions) == Counter(r["vehicle"] for r in rows)
    assert Counter(p.spreader_on for p in positions) == {False: 363, True: 214}
    # the CSV's own time column agrees with the epoch the feed carries
    assert {datetime.fromisoformat(r["time_utc"]) for r in rows} == {
        p.fix_time for p in positions}
    for p in positions:
        assert (p.town, p.plow_down, p.altitude_m, p.device_time) == (
            "drammen", None, 0.0, None)
        assert p.received_at == NOW
    # The only other feature is the roadside weather station: named, not dropped.
    [r] = rejections
    assert r.reason == "not_a_position" and "weather station" in r.detail
    assert r.index == 577 and orjson.loads(r.payload)["properties"]["from_rsu"]


def test_raw_of_each_fix_is_a_one_point_feature_of_its_piece() -> None:
    positions, _ = decode(msg(feed()), Limits())
    first = orjson.loads(positions[0].raw)
    assert first["geometry"] == {"type": "Point",
                                 "coordinates": [10.145324, 59.719246, 0, 1676319682]}
    assert first["properties"]["alt_vehicle"] == "1090015369"
    assert first["properties"]["toggle_state"] == "SALT"
    assert [p.index for p in positions] == list(range(577))


def test_piece_start_is_not_trusted_over_the_point_times() -> None:
    # In the real sample one piece says it started on 2023-04-15 while its points are
    # from 2023-02-13; every fix keeps its own point time.
    doc = orjson.loads(feed())
    [piece] = [f for f in doc["features"]
               if f["properties"].get("start", "").startswith("2023-04-15")]
    positions, _ = decode(msg({"type": "FeatureCollection", "features": [piece]}), Limits())
    assert len(positions) == 53
    assert {p.fix_time.date().isoformat() for p in positions} == {"2023-02-13"}


def piece(coords: object, **props: object) -> dict[str, object]:
    properties: dict[str, object] = {"alt_vehicle": "815597455", "toggle_state": "SALT"}
    properties.update(props)
    return {"type": "Feature", "properties": properties,
            "geometry": {"type": "LineString", "coordinates": coords}}


def collection(*features: object) -> dict[str, object]:
    return {"type": "FeatureCollection", "features": list(features)}


GOOD = [10.15, 59.72, 0, 1676319682]


@pytest.mark.parametrize(
    ("feature", "reason"),
    [
        (piece([[10.15, 59.72, 0]]), "missing_field"),  # a point without its time
        (piece([[10.15, 59.72, 0, "noon"]]), "bad_time"),
        (piece([[10.15, 95.0, 0, 1676319682]]), "bad_coordinates"),
        (piece([[0, 0, 0, 1676319682]]), "zero_coordinates"),
        (piece([[10.15]]), "bad_shape"),
        (piece([GOOD], alt_vehicle="bad id!"), "bad_vehicle"),
        (piece([GOOD], alt_vehicle=None), "not_a_position"),
        (piece([]), "bad_shape"),
        ({"type": "Feature", "properties": None}, "bad_shape"),
        (7, "bad_shape"),
    ],
)
def test_bad_pieces_and_points(feature: object, reason: str) -> None:
    positions, [r] = decode(msg(collection(feature)), Limits())
    assert positions == [] and r.reason == reason


def test_toggle_states_and_vehicle_fallback() -> None:
    doc = collection(piece([GOOD], toggle_state="GRAVEL"),
                     piece([[10.16, 59.72, 0, 1676319690]], toggle_state="DEFAULT"),
                     piece([[10.17, 59.72, 0, 1676319700]], toggle_state="FOAM",
                           alt_vehicle=None, vehicle_id=42))
    positions, rejections = decode(msg(doc), Limits())
    assert rejections == []
    assert [(p.vehicle, p.spreader_on) for p in positions] == [
        ("815597455", True), ("815597455", False), ("42", None)]


@pytest.mark.parametrize(
    ("payload", "reason"),
    [(b"<html>", "bad_json"), (b"[]", "bad_shape"), (b'{"type":"Feature"}', "bad_shape"),
     (b'{"type":"FeatureCollection","features":[]}', "bad_shape")],
)
def test_bad_feeds(payload: bytes, reason: str) -> None:
    positions, [r] = decode(msg(payload), Limits())
    assert positions == [] and r.reason == reason and r.payload == payload


def test_limits_count_points_not_features() -> None:
    doc = collection(piece([GOOD, [10.16, 59.72, 0, 1676319690]]))
    _, [r] = decode(msg(doc), Limits(max_fixes=1))
    assert r.reason == "too_many_fixes"
    assert only_topic_reason("drammen") == only_topic_reason("drammen/Big Town") == "bad_topic"


def only_topic_reason(topic: str) -> str:
    _, [r] = decode(msg(collection(piece([GOOD])), topic), Limits())
    return r.reason
