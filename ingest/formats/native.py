"""plowshare's native MQTT format.

Topic ``<prefix>/<town>/<vehicle>/position``; payload one JSON object, or a JSON array of
them (a device that was offline sends its buffer in one message)::

    {"time": "2026-11-29T07:15:02Z" | 1795936502.0,   # fix time, ISO 8601 with offset or epoch s
     "lat": 60.868, "lon": 26.704,                     # WGS84 degrees
     "speed": 8.2,        # m/s, optional
     "heading": 271.0,    # degrees clockwise from north, optional
     "accuracy": 6.5,     # metres, optional
     "plow": true,        # blade down, optional (absent = no sensor)
     "spreader": false,   # spreader on, optional
     "seq": 1234}         # device sequence number, optional

Every problem has a named reason; a bad fix inside an array rejects only that fix.
The format has no device time: ``device_time`` stays None.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ingest.formats.common import (
    INT64,
    Decoded,
    Invalid,
    Limits,
    Refused,
    accuracy,
    coordinates,
    decode_fixes,
    finite,
    heading,
    json_storable,
    load_json,
    open_message,
    parse_time,
    speed,
    town_and_vehicle,
)
from ingest.model import Message, Position

KNOWN_KEYS = frozenset(
    {"time", "lat", "lon", "speed", "heading", "accuracy", "plow", "spreader", "seq"}
)


def parse_topic(topic: str, prefix: str = "plowshare") -> tuple[str, str]:
    parts = topic.split("/")
    if len(parts) != 4 or parts[0] != prefix or parts[3] != "position":
        raise Invalid("bad_topic", f"expected {prefix}/<town>/<vehicle>/position")
    return town_and_vehicle(parts[1], parts[2])


def decode_message(msg: Message, limits: Limits, prefix: str = "plowshare") -> Decoded:
    try:
        town, vehicle = open_message(msg, limits, lambda topic: parse_topic(topic, prefix))
        doc = load_json(msg, town, vehicle)
    except Refused as refused:
        return refused.decoded
    return decode_fixes(msg, doc, town=town, vehicle=vehicle, limits=limits,
                        what="payload", decode_one=_decode_fix)


def _decode_fix(
    fix: Any, msg: Message, town: str, vehicle: str, raw: bytes, index: int | None
) -> Position:
    if not isinstance(fix, dict):
        raise Invalid("bad_shape", "each fix must be a JSON object")
    json_storable(raw)
    for key in ("time", "lat", "lon"):
        if key not in fix:
            raise Invalid("missing_field", f"'{key}' is required")
    lat, lon = coordinates(finite(fix["lat"], "lat", "bad_coordinates"),
                           finite(fix["lon"], "lon", "bad_coordinates"))
    return Position(
        topic=msg.topic,
        town=town,
        vehicle=vehicle,
        fix_time=parse_time(fix["time"]),
        received_at=msg.received_at,
        lat=lat,
        lon=lon,
        speed_mps=_optional(fix, "speed", "bad_speed", speed),
        heading_deg=_optional(fix, "heading", "bad_heading", heading),
        accuracy_m=_optional(fix, "accuracy", "bad_accuracy", accuracy),
        plow_down=_flag(fix, "plow"),
        spreader_on=_flag(fix, "spreader"),
        seq=_seq(fix),
        raw=raw,
        index=index,
    )


def _optional(
    fix: dict[str, Any], key: str, reason: str, check: Callable[[float, str], float]
) -> float | None:
    # Absent (or null) means "no such sensor", never zero.
    value = fix.get(key)
    if value is None:
        return None
    return check(finite(value, key, reason), key)


def _flag(fix: dict[str, Any], key: str) -> bool | None:
    value = fix.get(key)
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise Invalid("bad_flag", f"'{key}' must be true/false or 1/0")


def _seq(fix: dict[str, Any]) -> int | None:
    value = fix.get("seq")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= INT64:
        raise Invalid("bad_seq", "'seq' must be a non-negative integer")
    return value
