"""The one normalised position model every device format is decoded into (Traccar's
`Position`), and what the pipeline passes between its steps.

Three times per fix, all UTC: ``fix_time`` (when the GPS fixed the position),
``device_time`` (when the device built the message, where the format says so) and
``received_at`` (when plowshare received it). Units: metres, m/s, degrees clockwise from
north — every decoder converts (OwnTracks km/h, OsmAnd knots) before a Position exists.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

# Every reason a fix or a message can be refused for, with what it means. Decoders,
# filters and the pipeline use only these names, so the metric's label set is closed and
# an operator can look any stored reason up here.
REASONS: dict[str, str] = {
    "bad_topic": "the topic does not name a known format, town and vehicle",
    "payload_too_large": "the message is larger than PLOWSHARE_INGEST_MAX_PAYLOAD_BYTES",
    "bad_json": "not JSON, or JSON PostgreSQL cannot store (a NUL character)",
    "bad_form": "an OsmAnd query string or form body that cannot be decoded",
    "bad_shape": "JSON of the wrong shape for its format",
    "decode_failed": "the decoder raised an unexpected error (a bug; see the server log)",
    "too_many_fixes": "more fixes in one message than PLOWSHARE_INGEST_MAX_FIXES_PER_MESSAGE",
    "missing_field": "a required field (time, latitude, longitude, device id) is absent",
    "bad_time": "a fix or device time that is not a valid time, or has no UTC offset",
    "bad_coordinates": "latitude/longitude not numbers or out of range",
    "zero_coordinates": "(0, 0): a receiver without a fix",
    "bad_speed": "speed not a number, negative or above 360 km/h",
    "bad_heading": "heading not a number or outside 0-360 degrees",
    "bad_accuracy": "accuracy not a number or negative",
    "bad_altitude": "altitude not a number or outside -1000..20000 m",
    "bad_flag": "a plow/spreader/valid flag with a value that is not on/off",
    "bad_seq": "sequence number not a non-negative 64-bit integer",
    "bad_vehicle": "a vehicle id inside a multi-vehicle feed that is not a valid ident",
    "vehicle_mismatch": "the device id in the payload is not the vehicle the topic names",
    "not_a_position": "a well-formed message that carries no position (OwnTracks lwt, "
                      "transition, card…; a feed's weather observation)",
    "invalid_fix": "the device itself marked the fix invalid (OsmAnd valid=false, mock)",
    "future_time": "fix time too far ahead of server time",
    "too_old": "fix time older than the town's maximum age",
    "poor_accuracy": "reported accuracy worse than the town's threshold",
    "impossible_speed": "too far from the vehicle's previous fix for the time between them",
    "unknown_town": "no such town",
    "unknown_vehicle": "no such vehicle and auto-registration is off",
    "unauthorized_device": "not an active device of the town (device credentials enforced)",
    "duplicate": "this vehicle already has a fix at this fix time",
    "store_failed": "the database refused the message; see the server log",
}


@dataclass(frozen=True, slots=True)
class Message:
    """One message as it came off the wire (MQTT, or the OsmAnd HTTP endpoint)."""

    topic: str
    payload: bytes
    received_at: datetime  # server receive time, UTC
    mid: int = 0
    qos: int = 0
    # The HTTP Content-Type when the message came over HTTP; None over MQTT.
    content_type: str | None = None


@dataclass(slots=True)
class Position:
    """One GPS fix, units normalised: metres, m/s, degrees clockwise from north, UTC."""

    topic: str
    town: str
    vehicle: str
    fix_time: datetime
    received_at: datetime
    lat: float
    lon: float
    device_time: datetime | None = None  # when the device built the message, if said
    speed_mps: float | None = None
    heading_deg: float | None = None
    accuracy_m: float | None = None
    altitude_m: float | None = None  # kept in raw; no column yet
    plow_down: bool | None = None
    spreader_on: bool | None = None
    seq: int | None = None
    # False when the device itself says the fix is not good (OsmAnd valid=false, a mock
    # location): the invalid_fix filter refuses it unless the town switched that off.
    valid: bool = True
    raw: bytes = b""  # this fix exactly as sent, JSON
    index: int | None = None  # place in an array payload
    # Filled by the resolve step:
    town_id: int | None = None
    vehicle_id: int | None = None


@dataclass(frozen=True, slots=True)
class Rejection:
    """Something not accepted, with a named reason. Stored in rejected_pings, counted."""

    reason: str
    detail: str
    topic: str
    payload: bytes
    received_at: datetime
    town: str | None = None
    vehicle: str | None = None
    index: int | None = None
    town_id: int | None = None


@dataclass(slots=True)
class Batch:
    """What one flush works on: the messages, and what became of them."""

    messages: list[Message]
    positions: list[Position] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    stored: list[Position] = field(default_factory=list)

    def reject(self, p: Position, reason: str, detail: str) -> None:
        self.rejections.append(
            Rejection(
                reason=reason,
                detail=detail,
                topic=p.topic,
                payload=p.raw,
                received_at=p.received_at,
                town=p.town,
                vehicle=p.vehicle,
                index=p.index,
                town_id=p.town_id,
            )
        )
