"""OsmAnd / Traccar Client over HTTP: query strings, form bodies and the newer JSON body,
knots and milliseconds, attributes that carry the blade and spreader, and the device id
that must match the vehicle the endpoint authenticated."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from ingest.decode import Limits, decode
from ingest.model import Message

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "formats" / "osmand"
NOW = datetime(2026, 11, 29, 7, 15, 5, tzinfo=UTC)
TOPIC = "osmand/kouvola/plow-7"
FIX_TIME = datetime(2026, 11, 29, 7, 15, 2, tzinfo=UTC)
KNOT = 1852 / 3600
FORM = "application/x-www-form-urlencoded"


def msg(payload: bytes | str, content_type: str | None = None, topic: str = TOPIC) -> Message:
    raw = payload.encode() if isinstance(payload, str) else payload
    return Message(topic, raw, NOW, content_type=content_type)


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def query(**over: object) -> str:
    base: dict[str, object] = {"id": "plow-7", "timestamp": 1795936502, "lat": 60.8681,
                               "lon": 26.7042}
    base.update(over)
    return "&".join(f"{k}={v}" for k, v in base.items() if v is not ...)


def only_reason(payload: bytes | str, content_type: str | None = None,
                topic: str = TOPIC) -> str:
    positions, rejections = decode(msg(payload, content_type, topic), Limits())
    assert positions == [], positions
    assert len(rejections) == 1, rejections
    return rejections[0].reason


def test_traccar_client_8_query_string() -> None:
    [p], rejections = decode(msg(fixture("traccar_client_8.query")), Limits())
    assert rejections == []
    assert (p.town, p.vehicle, p.fix_time, p.received_at) == ("kouvola", "plow-7", FIX_TIME,
                                                              NOW)
    assert (p.lat, p.lon) == (60.868102, 26.704213)
    assert p.speed_mps == pytest.approx(16.2 * KNOT)  # knots
    assert (p.heading_deg, p.altitude_m, p.accuracy_m) == (271.3, 87.4, 4.8)
    assert (p.plow_down, p.spreader_on, p.valid, p.device_time) == (None, None, True, None)
    # raw is the decoded fields, every one of them, as a JSON object of strings
    raw = orjson.loads(p.raw)
    assert raw["batt"] == "64.0" and raw["charge"] == "true" and raw["speed"] == "16.2"


def test_osmand_app_sends_milliseconds() -> None:
    [p], _ = decode(msg(fixture("osmand_app.query")), Limits())
    assert p.fix_time == FIX_TIME
    assert p.speed_mps == pytest.approx(15.9 * KNOT)
    assert p.heading_deg is None and p.accuracy_m is None  # hdop is only an attribute


def test_form_body_with_blade_and_spreader_attributes() -> None:
    [p], _ = decode(msg(fixture("plow_attributes.form"), FORM), Limits())
    assert (p.plow_down, p.spreader_on) == (True, True)
    assert (p.lat, p.lon, p.fix_time) == (60.868102, 26.704213, FIX_TIME)
    assert p.heading_deg == 271.3  # 'heading' is a synonym of 'bearing'


@pytest.mark.parametrize(
    ("attrs", "plow", "spreader"),
    [("blade=up&spreader=off", False, False), ("blade=DOWN", True, None),
     ("plow=1&spreader=true", True, True), ("spreader=0", None, False),
     ("blade=down&plow=true", True, None)],
)
def test_attribute_values(attrs: str, plow: bool | None, spreader: bool | None) -> None:
    [p], _ = decode(msg(query() + "&" + attrs), Limits())
    assert (p.plow_down, p.spreader_on) == (plow, spreader)


def test_device_marked_invalid_is_decoded_then_filtered_by_name() -> None:
    [p], _ = decode(msg(fixture("no_fix.query")), Limits())
    assert p.valid is False  # the invalid_fix filter refuses it (tests/ingest/test_filters.py)


def test_traccar_client_9_json_body_speed_in_mps() -> None:
    raw = fixture("traccar_client_9.json")
    [p], rejections = decode(msg(raw, "application/json; charset=utf-8"), Limits())
    assert rejections == []
    assert p.fix_time == datetime(2026, 11, 29, 7, 15, 2, 120000, tzinfo=UTC)
    assert p.speed_mps == 8.33  # m/s in the JSON variant
    assert (p.heading_deg, p.accuracy_m, p.altitude_m) == (271.3, 4.8, 87.4)
    assert p.plow_down is True  # extras.blade
    assert p.raw == raw


def test_json_is_recognised_without_a_content_type() -> None:
    [p], _ = decode(msg(fixture("traccar_client_9.json")), Limits())
    assert p.speed_mps == 8.33


def test_json_batch_unknown_values_and_mock() -> None:
    positions, rejections = decode(msg(fixture("traccar_client_9_batch.json"),
                                       "application/json"), Limits())
    assert rejections == []
    assert [p.index for p in positions] == [0, 1, 2]
    assert (positions[1].speed_mps, positions[1].heading_deg, positions[1].accuracy_m) == (
        None, None, None)  # -1 means unknown
    assert [p.valid for p in positions] == [True, True, False]  # mock: true
    assert orjson.loads(positions[2].raw)["device_id"] == "plow-7"


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (query(id="plow-8"), "vehicle_mismatch"),
        (query(id=..., deviceid="plow-8"), "vehicle_mismatch"),
        (query(deviceid="plow-8"), "vehicle_mismatch"),  # id and deviceid differ
        (query(id=...), "missing_field"),
        (query(timestamp=...), "missing_field"),
        (query(lat=...), "missing_field"),
        (query(lat=..., lon=...), "missing_field"),
        (query(timestamp="yesterday"), "bad_time"),
        (query(timestamp="2026-11-29T07:15:02"), "bad_time"),  # no offset: refuse to guess
        (query(lat="nan"), "bad_coordinates"),
        (query(lat="1_0"), "bad_coordinates"),
        (query(lat=95), "bad_coordinates"),
        (query(lat=0, lon=0), "zero_coordinates"),
        (query(lat=..., lon=..., location="60.1"), "bad_coordinates"),
        (query(location="60.2,26.7"), "bad_coordinates"),  # disagrees with lat/lon
        (query(speed=-1), "bad_speed"),
        (query(speed=500), "bad_speed"),  # knots
        (query(bearing=400), "bad_heading"),
        (query(bearing=10, heading=20), "bad_heading"),
        (query(accuracy="-3"), "bad_accuracy"),
        (query(altitude="high"), "bad_altitude"),
        (query(valid="maybe"), "bad_flag"),
        (query(blade="sideways"), "bad_flag"),
        (query(blade="down", plow="false"), "bad_flag"),
        (query() + "&lat=61", "bad_form"),
        (query() + "&note=%00", "bad_form"),
        (query() + "&note=%ff", "bad_form"),
        (b"id=plow-7&\xff", "bad_form"),
        ("&".join(f"k{i}=1" for i in range(300)), "bad_form"),
    ],
)
def test_bad_forms_are_rejected_with_their_reason(payload: str | bytes, reason: str) -> None:
    assert only_reason(payload) == reason


def test_iso_timestamp_whose_plus_became_a_space() -> None:
    [p], _ = decode(msg(query(timestamp="2026-11-29T09:15:02+02:00")), Limits())
    assert p.fix_time == FIX_TIME


def test_location_pair_and_empty_values_count_as_absent() -> None:
    [p], _ = decode(msg(query(lat=..., lon=..., location="60.8681,26.7042",
                              altitude="", speed="")), Limits())
    assert (p.lat, p.lon, p.altitude_m, p.speed_mps) == (60.8681, 26.7042, None, None)


def json_body(**location: object) -> bytes:
    loc: dict[str, object] = {"timestamp": "2026-11-29T07:15:02Z",
                              "coords": {"latitude": 60.8681, "longitude": 26.7042}}
    loc.update(location)
    return orjson.dumps({"device_id": "plow-7", "location": loc})


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"{", "bad_json"),
        (b"[1]", "missing_field"),  # no JSON content type, not an object: read as a form
        (orjson.dumps({"location": {}}), "missing_field"),
        (orjson.dumps({"device_id": "plow-8", "location": {}}), "vehicle_mismatch"),
        (orjson.dumps({"device_id": ["x"], "location": {}}), "bad_shape"),
        (orjson.dumps({"device_id": "plow-7"}), "missing_field"),
        (orjson.dumps({"device_id": "plow-7", "location": 5}), "bad_shape"),
        (orjson.dumps({"device_id": "plow-7", "location": []}), "bad_shape"),
        (json_body(coords=None), "missing_field"),
        (json_body(coords={"latitude": 60.1}), "missing_field"),
        (json_body(timestamp="2026-11-29 07:15:02"), "bad_time"),
        (json_body(coords={"latitude": 60.1, "longitude": 26.1, "speed": 1000}), "bad_speed"),
        (json_body(coords={"latitude": 60.1, "longitude": 26.1, "altitude": "x"}),
         "bad_altitude"),
        (json_body(mock="yes"), "bad_flag"),
        (json_body(extras={"spreader": "lots"}), "bad_flag"),
    ],
)
def test_bad_json_bodies(payload: bytes, reason: str) -> None:
    content_type = None if payload == b"[1]" else "application/json"
    assert only_reason(payload, content_type) == reason


def test_numeric_device_id_in_json() -> None:
    body = orjson.dumps({"device_id": 12345678, "location": orjson.loads(json_body())[
        "location"]})
    [p], _ = decode(msg(body, "application/json", "osmand/kouvola/12345678"), Limits())
    assert p.vehicle == "12345678"


def test_one_bad_fix_in_a_json_batch_rejects_only_that_fix() -> None:
    doc = orjson.loads(fixture("traccar_client_9_batch.json"))
    doc["location"][1]["coords"]["latitude"] = 123
    positions, [r] = decode(msg(orjson.dumps(doc), "application/json"), Limits())
    assert [p.index for p in positions] == [0, 2]
    assert (r.reason, r.index) == ("bad_coordinates", 1)
    assert orjson.loads(r.payload)["location"]["coords"]["latitude"] == 123


@pytest.mark.parametrize("topic", ["osmand/kouvola", "osmand/kouvola/plow-7/x",
                                   "osmand/KOUVOLA/plow-7"])
def test_topic_is_osmand_town_vehicle(topic: str) -> None:
    assert only_reason(query(), topic=topic) == "bad_topic"
