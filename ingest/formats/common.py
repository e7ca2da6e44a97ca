"""What every decoder shares: the named-failure exception, limits, identifier rules,
number and time parsing, and the checks that make a Position storable.

The ranges here are about what a value *can* mean (a latitude beyond 90°, a negative
speed), not policy: policy thresholds (accuracy, speed jumps, time window) are the
per-town filters in :mod:`ingest.filters`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import orjson

from ingest.model import Message, Position, Rejection

SLUG = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
VEHICLE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

MAX_SPEED_MPS = 100.0  # 360 km/h: anything above is a broken receiver, not a plow
MAX_ACCURACY_M = 100_000.0
MIN_ALTITUDE_M = -1_000.0  # below the Dead Sea shore, above the highest road by far
MAX_ALTITUDE_M = 20_000.0
INT64 = 2**63 - 1


@dataclass(frozen=True, slots=True)
class Limits:
    max_payload_bytes: int = 256 * 1024
    max_fixes: int = 2000


class Invalid(ValueError):
    """A fix field is wrong; ``reason`` names the rule."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


Decoded = tuple[list[Position], list[Rejection]]


def whole(
    msg: Message, reason: str, detail: str, town: str | None = None,
    vehicle: str | None = None, index: int | None = None,
) -> Decoded:
    """The message as a whole is refused: store it exactly as received."""
    return [], [Rejection(reason, detail, msg.topic, msg.payload, msg.received_at,
                          town, vehicle, index)]


class Refused(Exception):
    """A message refused as a whole before its body is read; ``decoded`` says why."""

    def __init__(self, decoded: Decoded) -> None:
        super().__init__(decoded[1][0].reason)
        self.decoded = decoded


# What a topic names: a town and a vehicle, or (a feed for a whole town) just the town.
Where = TypeVar("Where", tuple[str, str], tuple[str, None])


def open_message(msg: Message, limits: Limits, parse_topic: Callable[[str], Where]) -> Where:
    """(town, vehicle) from the topic, once topic and size pass; raises Refused.

    Every decoder starts so: a bad topic is stored without a town, an oversized
    payload with what the topic named.
    """
    try:
        where = parse_topic(msg.topic)
    except Invalid as exc:
        raise Refused(whole(msg, exc.reason, exc.detail)) from exc
    town, vehicle = where
    if len(msg.payload) > limits.max_payload_bytes:
        raise Refused(whole(msg, "payload_too_large",
                            f"{len(msg.payload)} bytes > {limits.max_payload_bytes}",
                            town, vehicle))
    return where


def load_json(msg: Message, town: str, vehicle: str | None) -> Any:
    """The payload as JSON; raises Refused (bad_json) when it is not."""
    try:
        return orjson.loads(msg.payload)
    except orjson.JSONDecodeError as exc:
        raise Refused(whole(msg, "bad_json", f"not JSON: {exc}", town, vehicle)) from exc


def show(value: Any, limit: int = 40) -> str:
    """A device's value inside a detail text: repr() escapes NUL and control characters
    (PostgreSQL text cannot hold NUL) and the length is bounded."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def town_and_vehicle(town: str, vehicle: str) -> tuple[str, str]:
    if not SLUG.match(town):
        raise Invalid("bad_topic", "town must be lower-case letters, digits and '-'")
    if not VEHICLE.match(vehicle):
        raise Invalid("bad_topic", "vehicle id must be letters, digits, '_', '.', '-' (≤ 64)")
    return town, vehicle


def json_storable(raw: bytes) -> None:
    if b"\\u0000" in raw:
        # PostgreSQL jsonb cannot hold NUL characters; such a fix could never be stored.
        raise Invalid("bad_json", "NUL character in payload")


def is_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float)


def finite(value: Any, name: str, reason: str) -> float:
    if not is_number(value):
        raise Invalid(reason, f"'{name}' must be a number")
    try:
        result = float(value)
    except OverflowError:  # a Python int beyond float range (not from orjson, which caps)
        raise Invalid(reason, f"'{name}' is out of range") from None
    if not math.isfinite(result):
        raise Invalid(reason, f"'{name}' must be finite")
    return result


def in_range(value: float, name: str, low: float, high: float, reason: str) -> float:
    if not low <= value <= high:
        raise Invalid(reason, f"'{name}' must be between {low:g} and {high:g}")
    return value


def coordinates(lat: float, lon: float) -> tuple[float, float]:
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        raise Invalid("bad_coordinates", f"lat/lon out of range: {lat}, {lon}")
    if lat == 0.0 and lon == 0.0:
        raise Invalid("zero_coordinates", "(0, 0) is a receiver without a fix")
    return lat, lon


def speed(mps: float, name: str) -> float:
    return in_range(mps, name, 0.0, MAX_SPEED_MPS, "bad_speed")


def heading(deg: float, name: str) -> float:
    return in_range(deg, name, 0.0, 360.0, "bad_heading") % 360.0


def accuracy(metres: float, name: str) -> float:
    return in_range(metres, name, 0.0, MAX_ACCURACY_M, "bad_accuracy")


def altitude(metres: float, name: str) -> float:
    return in_range(metres, name, MIN_ALTITUDE_M, MAX_ALTITUDE_M, "bad_altitude")


def epoch(seconds: float, name: str = "time") -> datetime:
    if not math.isfinite(seconds):
        raise Invalid("bad_time", f"'{name}' is not a finite number")
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        raise Invalid("bad_time", f"'{name}' epoch seconds out of range: {seconds}") from None


def iso_time(value: str, name: str = "time") -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise Invalid("bad_time", f"'{name}' is not ISO 8601: {show(value)}") from None
    if parsed.tzinfo is None:
        # Vendors have sent local time labelled as UTC; we refuse to guess.
        raise Invalid("bad_time", f"'{name}': ISO 8601 time needs an offset or 'Z'")
    try:
        return parsed.astimezone(UTC)
    except (OverflowError, ValueError):
        raise Invalid("bad_time", f"'{name}' out of range: {show(value)}") from None


def parse_time(value: Any, name: str = "time") -> datetime:
    """ISO 8601 with an offset, or epoch seconds (the native and JSON formats)."""
    if is_number(value):
        return epoch(finite(value, name, "bad_time"), name)
    if isinstance(value, str):
        return iso_time(value, name)
    raise Invalid("bad_time", f"'{name}' must be ISO 8601 or epoch seconds")


FixDecoder = Callable[[Any, Message, str, str, bytes, "int | None"], Position]


def decode_fixes(
    msg: Message,
    doc: Any,
    *,
    town: str,
    vehicle: str,
    limits: Limits,
    what: str,
    decode_one: FixDecoder,
    raw_of: Callable[[Any], bytes] = orjson.dumps,
) -> Decoded:
    """One fix (an object) or a buffer of them (an array): each decoded on its own, so
    a bad fix rejects only itself. ``raw_of`` gives the bytes kept for one array item;
    a single fix keeps the payload exactly as it came."""
    if isinstance(doc, dict):
        items: list[Any] = [doc]
        single = True
    elif isinstance(doc, list):
        items, single = doc, False
    else:
        return whole(msg, "bad_shape", f"{what} must be a JSON object or an array of them",
                     town, vehicle)
    if not items:
        return whole(msg, "bad_shape", f"empty {what} array", town, vehicle)
    if len(items) > limits.max_fixes:
        return whole(msg, "too_many_fixes", f"{len(items)} fixes > {limits.max_fixes}",
                     town, vehicle)
    positions: list[Position] = []
    rejections: list[Rejection] = []
    for i, item in enumerate(items):
        index = None if single else i
        try:
            raw = msg.payload if single else raw_of(item)
        except TypeError:  # orjson.JSONEncodeError: nested deeper than it writes back
            rejections.append(Rejection("bad_shape", "fix nested too deep", msg.topic,
                                        msg.payload, msg.received_at, town, vehicle, index))
            continue
        try:
            json_storable(raw)
            positions.append(decode_one(item, msg, town, vehicle, raw, index))
        except Invalid as exc:
            rejections.append(Rejection(exc.reason, exc.detail, msg.topic, raw,
                                        msg.received_at, town, vehicle, index))
    return positions, rejections
