"""OwnTracks over MQTT: topic convention, units, the omitted-when-zero fields, and every
non-location message type recorded by name, never dropped or crashed on."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from ingest.decode import Limits, decode
from ingest.model import Message

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "formats" / "owntracks"
NOW = datetime(2026, 11, 29, 7, 15, 5, tzinfo=UTC)
TOPIC = "owntracks/kouvola/plow-7"


def msg(payload: object, topic: str = TOPIC) -> Message:
    raw = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    return Message(topic=topic, payload=raw, received_at=NOW, mid=1, qos=1)


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes().strip()


def location(**over: object) -> dict[str, object]:
    base: dict[str, object] = {"_type": "location", "lat": 60.8681, "lon": 26.7042,
                               "tst": 1795936502, "tid": "p7"}
    base.update(over)
    return {k: v for k, v in base.items() if v is not ...}


def only_reason(payload: object, topic: str = TOPIC) -> str:
    positions, rejections = decode(msg(payload, topic), Limits())
    assert positions == [], positions
    assert len(rejections) == 1
    return rejections[0].reason


def test_ios_location_every_field_in_plowshare_units() -> None:
    raw = fixture("location_ios.json")
    [p], rejections = decode(msg(raw), Limits())
    assert rejections == []
    assert (p.town, p.vehicle, p.topic) == ("kouvola", "plow-7", TOPIC)
    assert p.fix_time == datetime(2026, 11, 29, 7, 15, 2, tzinfo=UTC)
    assert p.device_time == datetime(2026, 11, 29, 7, 15, 4, tzinfo=UTC)
    assert p.received_at == NOW
    assert (p.lat, p.lon) == (60.868102, 26.704213)
    assert p.speed_mps == pytest.approx(30 / 3.6)  # vel is km/h
    assert (p.heading_deg, p.accuracy_m, p.altitude_m) == (271.0, 5.0, 87.0)
    assert (p.plow_down, p.spreader_on, p.seq, p.valid) == (None, None, None, True)
    assert p.raw == raw  # batt, tid, conn… stay in raw


def test_fields_left_out_when_zero_decode_as_zero_not_unknown() -> None:
    [p], _ = decode(msg(fixture("location_android_parked.json")), Limits())
    assert (p.speed_mps, p.heading_deg, p.altitude_m) == (0.0, 0.0, 0.0)
    assert p.accuracy_m == 12.0
    [q], _ = decode(msg(location()), Limits())
    assert (q.speed_mps, q.heading_deg, q.accuracy_m, q.altitude_m) == (0.0, 0.0, 0.0, 0.0)
    assert q.device_time is None  # no created_at: the format does not say


@pytest.mark.parametrize(
    ("name", "kind"),
    [("lwt.json", "lwt"), ("transition.json", "transition"), ("waypoint.json", "waypoint"),
     ("card.json", "card"), ("encrypted.json", "encrypted")],
)
def test_non_location_types_are_recorded_as_not_a_position(name: str, kind: str) -> None:
    raw = fixture(name)
    positions, [r] = decode(msg(raw), Limits())
    assert positions == []
    assert r.reason == "not_a_position"
    assert r.detail.startswith(f"owntracks _type '{kind}'")
    assert (r.payload, r.town, r.vehicle, r.topic) == (raw, "kouvola", "plow-7", TOPIC)


def test_lwt_detail_says_the_device_went_offline() -> None:
    _, [r] = decode(msg(fixture("lwt.json")), Limits())
    assert "went offline" in r.detail


def test_unknown_type_is_named_too() -> None:
    _, [r] = decode(msg({"_type": "somethingnew", "x": 1}), Limits())
    assert r.reason == "not_a_position" and "does not know" in r.detail


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"not json", "bad_json"),
        (b"[]", "bad_shape"),
        (b'[{"_type":"location"}]', "bad_shape"),
        ({"lat": 60.1, "lon": 26.1, "tst": 1795936502}, "bad_shape"),  # no _type
        ({"_type": 5}, "bad_shape"),
        (location(tst=...), "missing_field"),
        (location(lat=...), "missing_field"),
        (location(tst="1795936502"), "bad_time"),
        (location(tst=1e300), "bad_time"),
        (location(created_at="soon"), "bad_time"),
        (location(lat=91), "bad_coordinates"),
        (location(lat=0, lon=0), "zero_coordinates"),
        (location(vel=-1), "bad_speed"),
        (location(vel=400), "bad_speed"),  # km/h
        (location(cog=361), "bad_heading"),
        (location(acc=-5), "bad_accuracy"),
        (location(alt=30000), "bad_altitude"),
        (b'{"_type":"location","lat":60.1,"lon":26.1,"tst":1795936502,"tid":"\\u0000"}',
         "bad_json"),
    ],
)
def test_bad_locations_are_rejected_with_their_reason(payload: object, reason: str) -> None:
    assert only_reason(payload) == reason


@pytest.mark.parametrize(
    "topic",
    ["owntracks/kouvola", "owntracks/kouvola/plow-7/event", "owntracks/Kouvola/plow-7",
     "owntracks/kouvola/-x", "owntracks//plow-7"],
)
def test_topic_is_owntracks_town_vehicle(topic: str) -> None:
    assert only_reason(location(), topic) == "bad_topic"


def test_size_limit() -> None:
    raw = orjson.dumps(location())
    _, [r] = decode(msg(raw), Limits(max_payload_bytes=len(raw) - 1))
    assert r.reason == "payload_too_large"
