"""Decoder for plowshare's native MQTT format.

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
Pure: no I/O, the receive time comes in with the message.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Any

import orjson

from ingest.model import Message, Position, Rejection

SLUG = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
VEHICLE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
KNOWN_KEYS = frozenset(
    {"time", "lat", "lon", "speed", "heading", "accuracy", "plow", "spreader", "seq"}
)
_MAX_SPEED_MPS = 100.0  # 360 km/h: anything above is a broken receiver, not a plow
_MAX_ACCURACY_M = 100_000.0
_INT64 = 2**63 - 1


class Invalid(ValueError):
    """A fix field is wrong; ``reason`` names the rule."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def parse_topic(topic: str, prefix: str = "plowshare") -> tuple[str, str]:
    parts = topic.split("/")
    if len(parts) != 4 or parts[0] != prefix or parts[3] != "position":
        raise Invalid("bad_topic", f"expected {prefix}/<town>/<vehicle>/position")
    town, vehicle = parts[1], parts[2]
    if not SLUG.match(town):
        raise Invalid("bad_topic", "town must be lower-case letters, digits and '-'")
    if not VEHICLE.match(vehicle):
        raise Invalid("bad_topic", "vehicle id must be letters, digits, '_', '.', '-' (≤ 64)")
    return town, vehicle


def decode_message(
    msg: Message,
    *,
    prefix: str = "plowshare",
    max_payload_bytes: int = 256 * 1024,
    max_fixes: int = 2000,
) -> tuple[list[Position], list[Rejection]]:
    def whole(
        reason: str, detail: str, town: str | None = None, vehicle: str | None = None
    ) -> tuple[list[Position], list[Rejection]]:
        return [], [Rejection(reason, detail, msg.topic, msg.payload, msg.received_at,
                              town, vehicle)]

    try:
        town, vehicle = parse_topic(msg.topic, prefix)
    except Invalid as exc:
        return whole(exc.reason, exc.detail)
    if len(msg.payload) > max_payload_bytes:
        return whole("payload_too_large",
                     f"{len(msg.payload)} bytes > {max_payload_bytes}", town, vehicle)
    try:
        doc = orjson.loads(msg.payload)
    except orjson.JSONDecodeError as exc:
        return whole("bad_json", f"not JSON: {exc}", town, vehicle)
    if isinstance(doc, dict):
        fixes: list[Any] = [doc]
        single = True
    elif isinstance(doc, list):
        fixes, single = doc, False
    else:
        return whole("bad_shape", "payload must be a JSON object or an array of them",
                     town, vehicle)
    if not fixes:
        return whole("bad_shape", "empty array", town, vehicle)
    if len(fixes) > max_fixes:
        return whole("too_many_fixes", f"{len(fixes)} fixes > {max_fixes}", town, vehicle)

    positions: list[Position] = []
    rejections: list[Rejection] = []
    for i, fix in enumerate(fixes):
        index = None if single else i
        raw = msg.payload if single else orjson.dumps(fix)
        try:
            positions.append(_decode_fix(fix, msg, town, vehicle, raw, index))
        except Invalid as exc:
            rejections.append(Rejection(exc.reason, exc.detail, msg.topic, raw,
                                        msg.received_at, town, vehicle, index))
    return positions, rejections


def _decode_fix(
    fix: Any, msg: Message, town: str, vehicle: str, raw: bytes, index: int | None
) -> Position:
    if not isinstance(fix, dict):
        raise Invalid("bad_shape", "each fix must be a JSON object")
    if b"\\u0000" in raw:
        # PostgreSQL jsonb cannot hold NUL characters; such a fix could never be stored.
        raise Invalid("bad_json", "NUL character in payload")
    for key in ("time", "lat", "lon"):
        if key not in fix:
            raise Invalid("missing_field", f"'{key}' is required")
    lat = _number(fix["lat"], "lat")
    lon = _number(fix["lon"], "lon")
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        raise Invalid("bad_coordinates", f"lat/lon out of range: {lat}, {lon}")
    if lat == 0.0 and lon == 0.0:
        raise Invalid("zero_coordinates", "(0, 0) is a receiver without a fix")
    speed = _optional_number(fix, "speed", 0.0, _MAX_SPEED_MPS, "bad_speed")
    heading = _optional_number(fix, "heading", 0.0, 360.0, "bad_heading")
    accuracy = _optional_number(fix, "accuracy", 0.0, _MAX_ACCURACY_M, "bad_accuracy")
    return Position(
        topic=msg.topic,
        town=town,
        vehicle=vehicle,
        fix_time=parse_time(fix["time"]),
        received_at=msg.received_at,
        lat=lat,
        lon=lon,
        speed_mps=speed,
        heading_deg=None if heading is None else heading % 360.0,
        accuracy_m=accuracy,
        plow_down=_flag(fix, "plow"),
        spreader_on=_flag(fix, "spreader"),
        seq=_seq(fix),
        raw=raw,
        index=index,
    )


def parse_time(value: Any) -> datetime:
    if isinstance(value, bool):
        raise Invalid("bad_time", "time must be ISO 8601 or epoch seconds")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise Invalid("bad_time", "time is not a finite number")
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            raise Invalid("bad_time", f"epoch seconds out of range: {value}") from None
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise Invalid("bad_time", f"not ISO 8601: {value[:40]!r}") from None
        if parsed.tzinfo is None:
            # Vendors have sent local time labelled as UTC; we refuse to guess.
            raise Invalid("bad_time", "ISO 8601 time needs an offset or 'Z'")
        return parsed.astimezone(UTC)
    raise Invalid("bad_time", "time must be ISO 8601 or epoch seconds")


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Invalid("bad_coordinates", f"'{name}' must be a number")
    result = float(value)
    if not math.isfinite(result):
        raise Invalid("bad_coordinates", f"'{name}' must be finite")
    return result


def _optional_number(
    fix: dict[str, Any], key: str, low: float, high: float, reason: str
) -> float | None:
    value = fix.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Invalid(reason, f"'{key}' must be a number")
    result = float(value)
    if not (math.isfinite(result) and low <= result <= high):
        raise Invalid(reason, f"'{key}' must be between {low:g} and {high:g}")
    return result


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
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _INT64:
        raise Invalid("bad_seq", "'seq' must be a non-negative integer")
    return value
