"""The native MQTT format: every good form and every kind of bad input, by reason."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from ingest.decode import Invalid, decode_message, parse_topic
from ingest.model import Message

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
TOPIC = "plowshare/kouvola/plow-7/position"


def msg(payload: object, topic: str = TOPIC) -> Message:
    raw = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    return Message(topic=topic, payload=raw, received_at=NOW, mid=1, qos=1)


def fix(**over: object) -> dict[str, object]:
    base: dict[str, object] = {"time": "2026-11-29T11:59:58Z", "lat": 60.8679, "lon": 26.7042}
    base.update(over)
    return {k: v for k, v in base.items() if v is not ...}


def only_reason(payload: object, topic: str = TOPIC) -> str:
    positions, rejections = decode_message(msg(payload, topic))
    assert positions == []
    assert len(rejections) == 1
    return rejections[0].reason


def test_single_fix_all_fields() -> None:
    payload = fix(speed=8.5, heading=271.5, accuracy=4.0, plow=True, spreader=0, seq=42)
    [p], rejections = decode_message(msg(payload))
    assert rejections == []
    assert (p.town, p.vehicle) == ("kouvola", "plow-7")
    assert p.fix_time == datetime(2026, 11, 29, 11, 59, 58, tzinfo=UTC)
    assert p.received_at == NOW
    assert (p.lat, p.lon, p.speed_mps, p.heading_deg, p.accuracy_m) == (
        60.8679, 26.7042, 8.5, 271.5, 4.0)
    assert (p.plow_down, p.spreader_on, p.seq) == (True, False, 42)
    assert orjson.loads(p.raw) == payload
    assert p.index is None


def test_optional_fields_absent_mean_unknown() -> None:
    [p], _ = decode_message(msg(fix()))
    assert (p.speed_mps, p.heading_deg, p.accuracy_m, p.plow_down, p.spreader_on) == (
        None, None, None, None, None)


def test_epoch_seconds_and_offsets_are_utc() -> None:
    [a], _ = decode_message(msg(fix(time=1795953598.5)))
    assert a.fix_time == datetime.fromtimestamp(1795953598.5, UTC)
    [b], _ = decode_message(msg(fix(time="2026-11-29T13:59:58+02:00")))
    assert b.fix_time == datetime(2026, 11, 29, 11, 59, 58, tzinfo=UTC)


def test_heading_360_is_north() -> None:
    [p], _ = decode_message(msg(fix(heading=360)))
    assert p.heading_deg == 0.0


def test_array_rejects_only_the_bad_fix() -> None:
    payload = [fix(seq=1), fix(seq=2, lat=91), fix(seq=3, time="2026-11-29T11:59:59Z")]
    positions, rejections = decode_message(msg(payload))
    assert [p.seq for p in positions] == [1, 3]
    assert [p.index for p in positions] == [0, 2]
    [r] = rejections
    assert (r.reason, r.index, r.town, r.vehicle) == ("bad_coordinates", 1, "kouvola", "plow-7")
    assert orjson.loads(r.payload) == payload[1]


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"{not json", "bad_json"),
        (b"\xff\xfe", "bad_json"),
        (b"", "bad_json"),
        (b'"a string"', "bad_shape"),
        (b"42", "bad_shape"),
        (b"[]", "bad_shape"),
        ([1], "bad_shape"),
        (fix(time=...), "missing_field"),
        (fix(lat=...), "missing_field"),
        (fix(lon=...), "missing_field"),
        (fix(time="yesterday"), "bad_time"),
        (fix(time="2026-11-29T11:59:58"), "bad_time"),  # no offset: refuse to guess
        (fix(time=True), "bad_time"),
        (fix(time=None), "bad_time"),
        (fix(time=1e20), "bad_time"),
        (fix(lat="60.1"), "bad_coordinates"),
        (fix(lat=True), "bad_coordinates"),
        (fix(lat=-90.5), "bad_coordinates"),
        (fix(lon=180.01), "bad_coordinates"),
        (fix(lat=0, lon=0), "zero_coordinates"),
        (fix(speed=-1), "bad_speed"),
        (fix(speed=250), "bad_speed"),
        (fix(speed="fast"), "bad_speed"),
        (fix(heading=361), "bad_heading"),
        (fix(heading=-5), "bad_heading"),
        (fix(accuracy=-3), "bad_accuracy"),
        (fix(plow="down"), "bad_flag"),
        (fix(spreader=2), "bad_flag"),
        (fix(seq=-1), "bad_seq"),
        (fix(seq=1.5), "bad_seq"),
        (b'{"time":"2026-11-29T11:59:58Z","lat":60.1,"lon":26.1,"seq":18446744073709551616}',
         "bad_seq"),
        (b'{"time":"2026-11-29T11:59:58Z","lat":60.1,"lon":26.1,"note":"a\\u0000b"}',
         "bad_json"),
    ],
)
def test_bad_input_is_rejected_with_its_reason(payload: object, reason: str) -> None:
    assert only_reason(payload) == reason


def test_rejection_keeps_the_payload_exactly() -> None:
    raw = b"\x00\x01 not json at all"
    _, [r] = decode_message(msg(raw))
    assert r.payload == raw and r.topic == TOPIC and r.received_at == NOW


def test_size_and_count_limits() -> None:
    big = orjson.dumps([fix(seq=i) for i in range(50)])
    _, [r] = decode_message(msg(big), max_payload_bytes=len(big) - 1)
    assert r.reason == "payload_too_large"
    _, [r] = decode_message(msg(big), max_fixes=49)
    assert r.reason == "too_many_fixes"
    positions, rejections = decode_message(msg(big), max_fixes=50)
    assert len(positions) == 50 and rejections == []


@pytest.mark.parametrize(
    "topic",
    [
        "plowshare/kouvola/plow-7",
        "plowshare/kouvola/plow-7/position/extra",
        "other/kouvola/plow-7/position",
        "plowshare/Kouvola/plow-7/position",
        "plowshare/kou vola/plow-7/position",
        "plowshare/kouvola/-plow/position",
        "plowshare/kouvola/" + "x" * 65 + "/position",
        "plowshare//plow-7/position",
    ],
)
def test_bad_topics(topic: str) -> None:
    assert only_reason(fix(), topic) == "bad_topic"
    with pytest.raises(Invalid):
        parse_topic(topic)
