"""The native captures decode as documented, and decode() routes every topic to its
format (or names it bad_topic)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from ingest.decode import Limits, decode
from ingest.model import REASONS, Message

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "formats"
NOW = datetime(2026, 11, 29, 7, 15, 5, tzinfo=UTC)


def msg(topic: str, payload: bytes) -> Message:
    return Message(topic, payload, NOW)


def test_single_and_buffer_captures() -> None:
    raw = (FIXTURES / "native" / "single.json").read_bytes()
    [p], [] = decode(msg("plowshare/kouvola/plow-7/position", raw), Limits())
    assert (p.fix_time, p.speed_mps, p.plow_down, p.seq) == (
        datetime(2026, 11, 29, 7, 15, 2, tzinfo=UTC), 8.2, True, 1234)
    assert p.device_time is None and p.valid is True
    buffer = (FIXTURES / "native" / "buffer.json").read_bytes()
    positions, [r] = decode(msg("plowshare/kouvola/plow-7/position", buffer), Limits())
    assert [p.seq for p in positions] == [1228, 1229, 1231]
    assert (r.reason, r.index) == ("zero_coordinates", 2)


@pytest.mark.parametrize(
    ("topic", "payload", "town", "vehicle"),
    [
        ("plowshare/kouvola/plow-7/position", b'{"time":1795936502,"lat":60.1,"lon":26.1}',
         "kouvola", "plow-7"),
        ("owntracks/kouvola/plow-7", b'{"_type":"location","lat":60.1,"lon":26.1,'
         b'"tst":1795936502}', "kouvola", "plow-7"),
        ("osmand/kouvola/plow-7", b"id=plow-7&lat=60.1&lon=26.1&timestamp=1795936502",
         "kouvola", "plow-7"),
        ("drammen/drammen", orjson.dumps({"type": "FeatureCollection", "features": [{
            "type": "Feature", "properties": {"alt_vehicle": "519063249"},
            "geometry": {"type": "LineString", "coordinates": [[10.1, 59.7, 0,
                                                                1795936502]]}}]}),
         "drammen", "519063249"),
    ],
)
def test_topic_picks_the_format(topic: str, payload: bytes, town: str, vehicle: str) -> None:
    [p], [] = decode(msg(topic, payload), Limits())
    assert (p.town, p.vehicle, p.topic) == (town, vehicle, topic)
    assert p.fix_time == datetime(2026, 11, 29, 7, 15, 2, tzinfo=UTC)


@pytest.mark.parametrize("topic", ["", "/", "other/kouvola/plow-7", "plowshare",
                                   "traccar/kouvola/plow-7"])
def test_unknown_topics_are_bad_topic(topic: str) -> None:
    [], [r] = decode(msg(topic, b"{}"), Limits())
    assert r.reason == "bad_topic" and r.reason in REASONS


def test_a_custom_native_prefix_wins() -> None:
    raw = b'{"time":1795936502,"lat":60.1,"lon":26.1}'
    [p], [] = decode(msg("owntracks/kouvola/plow-7/position", raw), Limits(), "owntracks")
    assert p.vehicle == "plow-7"
