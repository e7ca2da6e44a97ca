"""OwnTracks JSON over MQTT.

Topic convention: ``owntracks/<user>/<device>`` where **user is the town slug and device
is the vehicle ident** (configure the app with UserID = town slug, DeviceID = vehicle
ident). Only that topic carries locations; the app's sub-topics (``…/event``, ``…/cmd``,
``…/info``) are not subscribed to.

Payload: one JSON object whose ``_type`` says what it is.

- ``location``: ``lat``, ``lon`` (degrees, required), ``tst`` (epoch s of the GPS fix,
  required), ``acc`` (m), ``alt`` (m), ``vel`` (**km/h**, converted to m/s), ``cog``
  (degrees), ``created_at`` (epoch s when the app built the message → ``device_time``),
  and ``batt``, ``tid``, ``t``, ``conn``… which are kept in ``raw`` only. The apps leave
  out ``acc``, ``alt``, ``cog`` and ``vel`` **when they are zero**, so for these four an
  absent field decodes as 0, not as unknown.
- ``lwt``: published by the broker when the app drops off. Not a position: it is recorded
  as a rejection with reason ``not_a_position`` (detail ``owntracks lwt: …``), so it is
  stored in ``rejected_pings`` with its payload and counted, like every other message
  that yields no fix.
- ``transition``, ``waypoint``, ``waypoints``, ``card``, ``cmd``, ``configuration``,
  ``beacon``, ``steps``, ``status``, ``encrypted`` and any other ``_type``: the same
  ``not_a_position`` record, the detail naming the type.
"""

from __future__ import annotations

from typing import Any

from ingest.formats.common import (
    MAX_SPEED_MPS,
    Decoded,
    Invalid,
    Limits,
    Refused,
    accuracy,
    altitude,
    coordinates,
    epoch,
    finite,
    heading,
    in_range,
    json_storable,
    load_json,
    open_message,
    show,
    town_and_vehicle,
    whole,
)
from ingest.model import Message, Position

ROOT = "owntracks"

_NOT_POSITIONS = {
    "lwt": "the broker reports the device went offline",
    "transition": "a region enter/leave event",
    "waypoint": "a region definition",
    "waypoints": "a list of region definitions",
    "card": "the user's display card",
    "cmd": "a remote command",
    "configuration": "the app's configuration",
    "beacon": "a BLE beacon report",
    "steps": "a step count",
    "status": "the app's status",
    "encrypted": "an encrypted payload (plowshare holds no key)",
}


def parse_topic(topic: str) -> tuple[str, str]:
    parts = topic.split("/")
    if len(parts) != 3 or parts[0] != ROOT:
        raise Invalid("bad_topic", "expected owntracks/<town>/<vehicle>")
    return town_and_vehicle(parts[1], parts[2])


def decode_message(msg: Message, limits: Limits) -> Decoded:
    try:
        town, vehicle = open_message(msg, limits, parse_topic)
        doc = load_json(msg, town, vehicle)
    except Refused as refused:
        return refused.decoded
    if not isinstance(doc, dict):
        return whole(msg, "bad_shape", "an OwnTracks message is one JSON object",
                     town, vehicle)
    kind = doc.get("_type")
    if not isinstance(kind, str):
        return whole(msg, "bad_shape", "no '_type' string", town, vehicle)
    if kind != "location":
        what = _NOT_POSITIONS.get(kind, "a message type plowshare does not know")
        return whole(msg, "not_a_position", f"owntracks _type {show(kind)}: {what}",
                     town, vehicle)
    try:
        return [_location(doc, msg, town, vehicle)], []
    except Invalid as exc:
        return whole(msg, exc.reason, exc.detail, town, vehicle)


def _location(doc: dict[str, Any], msg: Message, town: str, vehicle: str) -> Position:
    json_storable(msg.payload)
    for key in ("tst", "lat", "lon"):
        if key not in doc:
            raise Invalid("missing_field", f"'{key}' is required")
    lat, lon = coordinates(finite(doc["lat"], "lat", "bad_coordinates"),
                           finite(doc["lon"], "lon", "bad_coordinates"))
    created = doc.get("created_at")
    return Position(
        topic=msg.topic,
        town=town,
        vehicle=vehicle,
        fix_time=epoch(finite(doc["tst"], "tst", "bad_time"), "tst"),
        received_at=msg.received_at,
        lat=lat,
        lon=lon,
        device_time=None if created is None else epoch(
            finite(created, "created_at", "bad_time"), "created_at"),
        speed_mps=in_range(_zero_if_absent(doc, "vel", "bad_speed"), "vel (km/h)",
                           0.0, MAX_SPEED_MPS * 3.6, "bad_speed") / 3.6,
        heading_deg=heading(_zero_if_absent(doc, "cog", "bad_heading"), "cog"),
        accuracy_m=accuracy(_zero_if_absent(doc, "acc", "bad_accuracy"), "acc"),
        altitude_m=altitude(_zero_if_absent(doc, "alt", "bad_altitude"), "alt"),
        raw=msg.payload,
    )


def _zero_if_absent(doc: dict[str, Any], key: str, reason: str) -> float:
    # The apps omit acc/alt/cog/vel when they are zero: absent here means 0, not unknown.
    value = doc.get(key)
    return 0.0 if value is None else finite(value, key, reason)
