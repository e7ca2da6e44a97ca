"""OsmAnd / Traccar Client over HTTP (the protocol of Traccar's port 5055).

Payload convention with the HTTP endpoint (app/api/device_http.py), which calls
``Pipeline.process(pool, [message])`` with::

    Message(topic=f"osmand/{town}/{vehicle}",   # the vehicle the request authenticated as
            payload=...,                          # bytes, see below
            received_at=datetime.now(UTC),
            content_type=request.headers.get("content-type"))

- JSON body (``Content-Type: application/json`` or ``…+json``, or a body starting with
  ``{`` whatever its content type): ``payload`` is the body bytes exactly as received.
- Everything else — GET; POST ``application/x-www-form-urlencoded``; POST with the fix in
  the URL and an empty body (what Traccar Client's older versions send): ``payload`` is
  the URL's raw query string without the ``?``, percent-encoding untouched; when the
  request also has a form body, ``b"&"`` and the body bytes are appended. The endpoint
  removes the ``token=…`` pair first: a credential must not reach ``raw`` or quarantine.

The payload's device id (``id``, ``deviceid``, or the JSON ``device_id``) must name the
topic's vehicle, else the message is rejected ``vehicle_mismatch``.

Query/form fields (after Traccar's OsmAndProtocolDecoder): ``id``/``deviceid``,
``timestamp`` (epoch s; epoch ms when > 2^31, so epoch seconds only work until
2038-01-19; or ISO 8601 **with an offset** — unlike Traccar we never assume the server's
zone), ``lat``, ``lon`` (or ``location=lat,lon``),
``speed`` (**knots**), ``bearing``/``heading`` (degrees), ``altitude`` (m), ``accuracy``
(m), ``valid`` (true/false/1/0), ``batt``; any other key is an attribute kept in ``raw``.
Attributes plowshare reads: ``blade`` (down → plow down, up → raised; also ``plow``) and
``spreader`` (on/off), each also accepting true/false/1/0/yes/no. Empty values count as
absent, as in Traccar. A repeated key with different values is ``bad_form``: we will not
pick one. ``raw`` of a stored fix is the decoded fields as a JSON object of strings.

JSON body (Traccar Client 9+, built on transistorsoft background-geolocation)::

    {"device_id": "plow-7",
     "location": {"timestamp": "2026-11-29T07:15:02.120Z",
                  "coords": {"latitude": 60.86, "longitude": 26.70, "accuracy": 4.8,
                             "speed": 8.3, "heading": 271.4, "altitude": 92.1},
                  "is_moving": true, "odometer": 1234.5, "event": "motionchange",
                  "battery": {"level": 0.8, "is_charging": false},
                  "activity": {"type": "in_vehicle"}, "mock": false,
                  "extras": {"blade": "down"}}}

Here ``speed`` is **m/s**, and -1 in ``speed``/``heading``/``accuracy`` means unknown.
``location`` may also be an array (the plugin's batch sync): each element is one fix.
``mock: true`` (a simulated location) marks the fix invalid, as ``valid=false`` does.
Neither variant carries a device time separate from the fix time.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

import orjson

from ingest.formats.common import (
    MAX_SPEED_MPS,
    Decoded,
    Invalid,
    Limits,
    Refused,
    accuracy,
    altitude,
    coordinates,
    decode_fixes,
    epoch,
    finite,
    heading,
    in_range,
    is_number,
    iso_time,
    load_json,
    open_message,
    show,
    speed,
    town_and_vehicle,
    whole,
)
from ingest.model import Message, Position

ROOT = "osmand"

_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_MAX_FIELDS = 200
_MS_THRESHOLD = 2**31  # epoch values above this are milliseconds (as Traccar decides)
_KNOT_MPS = 1852.0 / 3600.0
_ON = frozenset({"down", "on", "true", "1", "yes"})
_OFF = frozenset({"up", "off", "false", "0", "no"})


def parse_topic(topic: str) -> tuple[str, str]:
    parts = topic.split("/")
    if len(parts) != 3 or parts[0] != ROOT:
        raise Invalid("bad_topic", "expected osmand/<town>/<vehicle>")
    return town_and_vehicle(parts[1], parts[2])


def is_json(msg: Message) -> bool:
    # The same rule as the HTTP endpoint's (app/api/device_http.py), so both read a
    # request the same way: a form never starts with '{', so a leading '{' means JSON
    # whatever the client said its content type was.
    media = (msg.content_type or "").split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json") or msg.payload[:1] == b"{"


def decode_message(msg: Message, limits: Limits) -> Decoded:
    try:
        town, vehicle = open_message(msg, limits, parse_topic)
    except Refused as refused:
        return refused.decoded
    if is_json(msg):
        return _decode_json(msg, town, vehicle, limits)
    try:
        fields = form_fields(msg.payload)
        _same_vehicle(_form_device(fields), vehicle)
        return [_form_fix(fields, msg, town, vehicle)], []
    except Invalid as exc:
        return whole(msg, exc.reason, exc.detail, town, vehicle)


# -- query string / form --------------------------------------------------------------
def form_fields(payload: bytes) -> dict[str, str]:
    try:
        text = payload.decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=False, encoding="utf-8", errors="strict",
                          max_num_fields=_MAX_FIELDS)
    except UnicodeDecodeError:
        raise Invalid("bad_form", "not UTF-8 (after percent-decoding)") from None
    except ValueError:
        raise Invalid("bad_form", f"more than {_MAX_FIELDS} fields") from None
    fields: dict[str, str] = {}
    for key, value in pairs:
        if "\x00" in key or "\x00" in value:
            raise Invalid("bad_form", "NUL character in a field")
        if fields.get(key, value) != value:
            raise Invalid("bad_form", f"{show(key)} given twice with different values")
        fields[key] = value
    return fields


def _form_device(fields: dict[str, str]) -> str:
    ids = {fields[k] for k in ("id", "deviceid") if k in fields}
    if not ids:
        raise Invalid("missing_field", "'id' is required")
    if len(ids) > 1:
        raise Invalid("vehicle_mismatch", "'id' and 'deviceid' differ")
    return ids.pop()


def _form_fix(fields: dict[str, str], msg: Message, town: str, vehicle: str) -> Position:
    if "timestamp" not in fields:
        raise Invalid("missing_field", "'timestamp' is required")
    lat, lon = _form_coordinates(fields)
    knots = _optional_number(fields, "speed", "bad_speed")
    bearing = _one_of(fields, ("bearing", "heading"), "bad_heading")
    alt = _optional_number(fields, "altitude", "bad_altitude")
    acc = _optional_number(fields, "accuracy", "bad_accuracy")
    valid = _switch(fields["valid"], "valid") if "valid" in fields else True
    return Position(
        topic=msg.topic,
        town=town,
        vehicle=vehicle,
        fix_time=osmand_time(fields["timestamp"]),
        received_at=msg.received_at,
        lat=lat,
        lon=lon,
        speed_mps=None if knots is None else in_range(
            knots, "speed (knots)", 0.0, MAX_SPEED_MPS / _KNOT_MPS, "bad_speed") * _KNOT_MPS,
        heading_deg=None if bearing is None else heading(bearing, "bearing"),
        accuracy_m=None if acc is None else accuracy(acc, "accuracy"),
        altitude_m=None if alt is None else altitude(alt, "altitude"),
        plow_down=_plow(fields),
        spreader_on=_switch(fields["spreader"], "spreader") if "spreader" in fields else None,
        valid=valid,
        raw=orjson.dumps(fields),
    )


def _form_coordinates(fields: dict[str, str]) -> tuple[float, float]:
    pair: tuple[float, float] | None = None
    if "lat" in fields or "lon" in fields:
        if "lat" not in fields or "lon" not in fields:
            raise Invalid("missing_field", "'lat' and 'lon' are required together")
        pair = (_number(fields["lat"], "lat", "bad_coordinates"),
                _number(fields["lon"], "lon", "bad_coordinates"))
    if "location" in fields:
        parts = fields["location"].split(",")
        if len(parts) != 2:
            raise Invalid("bad_coordinates", "'location' must be 'lat,lon'")
        other = (_number(parts[0].strip(), "location", "bad_coordinates"),
                 _number(parts[1].strip(), "location", "bad_coordinates"))
        if pair is not None and pair != other:
            raise Invalid("bad_coordinates", "'lat'/'lon' and 'location' disagree")
        pair = other
    if pair is None:
        raise Invalid("missing_field", "'lat' and 'lon' (or 'location') are required")
    return coordinates(*pair)


def _number(text: str, name: str, reason: str) -> float:
    # Python's float() also takes "nan", "inf", "1_000" and padding; a device's number
    # is digits, sign, point and exponent only.
    if not _NUMBER.match(text):
        raise Invalid(reason, f"'{name}' must be a number, got {show(text)}")
    return finite(float(text), name, reason)


def _optional_number(fields: dict[str, str], key: str, reason: str) -> float | None:
    return _number(fields[key], key, reason) if key in fields else None


def _one_of(fields: dict[str, str], keys: tuple[str, ...], reason: str) -> float | None:
    values = {_number(fields[k], k, reason) for k in keys if k in fields}
    if len(values) > 1:
        raise Invalid(reason, f"{' and '.join(keys)} disagree")
    return values.pop() if values else None


def osmand_time(value: Any) -> datetime:
    """Epoch seconds, epoch milliseconds (above 2^31), or ISO 8601 with an offset."""
    if is_number(value) or (isinstance(value, str) and _NUMBER.match(value)):
        number = finite(float(value), "timestamp", "bad_time")
        return epoch(number / 1000.0 if number > _MS_THRESHOLD else number, "timestamp")
    if not isinstance(value, str):
        raise Invalid("bad_time", "'timestamp' must be epoch seconds/ms or ISO 8601")
    try:
        return iso_time(value, "timestamp")
    except Invalid:
        if "T" not in value or " " not in value:
            raise
        # An unencoded '+' of "…T07:15:02+02:00" in a query string arrives as a space.
        return iso_time(value.replace(" ", "+"), "timestamp")


def _switch(value: Any, key: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _ON:
            return True
        if word in _OFF:
            return False
    raise Invalid("bad_flag", f"{show(key)} must be on/off (down/up, true/false, 1/0), "
                              f"got {show(value)}")


def _plow(attributes: dict[str, Any]) -> bool | None:
    states = {_switch(attributes[k], k) for k in ("blade", "plow") if k in attributes}
    if len(states) > 1:
        raise Invalid("bad_flag", "'blade' and 'plow' disagree")
    return states.pop() if states else None


def _same_vehicle(device: str, vehicle: str) -> None:
    if device != vehicle:
        raise Invalid("vehicle_mismatch",
                      f"payload device id {show(device)} but the topic names {vehicle!r}")


# -- JSON (Traccar Client 9+) ---------------------------------------------------------
def _decode_json(msg: Message, town: str, vehicle: str, limits: Limits) -> Decoded:
    try:
        doc = load_json(msg, town, vehicle)
    except Refused as refused:
        return refused.decoded
    if not isinstance(doc, dict):
        return whole(msg, "bad_shape", "the body must be a JSON object", town, vehicle)
    device = doc.get("device_id")
    if device is None:
        return whole(msg, "missing_field", "'device_id' is required", town, vehicle)
    if is_number(device) and float(device).is_integer():
        device = str(int(device))
    if not isinstance(device, str):
        return whole(msg, "bad_shape", "'device_id' must be a string", town, vehicle)
    try:
        _same_vehicle(device, vehicle)
    except Invalid as exc:
        return whole(msg, exc.reason, exc.detail, town, vehicle)
    location = doc.get("location")
    if location is None:
        return whole(msg, "missing_field", "'location' is required", town, vehicle)
    return decode_fixes(
        msg, location, town=town, vehicle=vehicle, limits=limits, what="'location'",
        decode_one=_json_fix,
        raw_of=lambda item: orjson.dumps({"device_id": device, "location": item}))


def _json_fix(
    loc: Any, msg: Message, town: str, vehicle: str, raw: bytes, index: int | None
) -> Position:
    if not isinstance(loc, dict):
        raise Invalid("bad_shape", "each location must be a JSON object")
    if "timestamp" not in loc:
        raise Invalid("missing_field", "'location.timestamp' is required")
    coords = loc.get("coords")
    if not isinstance(coords, dict):
        raise Invalid("missing_field", "'location.coords' is required")
    for key in ("latitude", "longitude"):
        if key not in coords:
            raise Invalid("missing_field", f"'coords.{key}' is required")
    lat, lon = coordinates(finite(coords["latitude"], "latitude", "bad_coordinates"),
                           finite(coords["longitude"], "longitude", "bad_coordinates"))
    mps = _known(coords, "speed", "bad_speed")
    course = _known(coords, "heading", "bad_heading")
    acc = _known(coords, "accuracy", "bad_accuracy")
    alt = coords.get("altitude")
    extras = loc.get("extras")
    attributes: dict[str, Any] = extras if isinstance(extras, dict) else {}
    mock = loc.get("mock")
    if mock is not None and not isinstance(mock, bool):
        raise Invalid("bad_flag", "'mock' must be true/false")
    return Position(
        topic=msg.topic,
        town=town,
        vehicle=vehicle,
        fix_time=osmand_time(loc["timestamp"]),
        received_at=msg.received_at,
        lat=lat,
        lon=lon,
        speed_mps=None if mps is None else speed(mps, "speed"),
        heading_deg=None if course is None else heading(course, "heading"),
        accuracy_m=None if acc is None else accuracy(acc, "accuracy"),
        altitude_m=None if alt is None else altitude(
            finite(alt, "altitude", "bad_altitude"), "altitude"),
        plow_down=_plow(attributes),
        spreader_on=(_switch(attributes["spreader"], "spreader")
                     if "spreader" in attributes else None),
        valid=mock is not True,
        raw=raw,
        index=index,
    )


def _known(coords: dict[str, Any], key: str, reason: str) -> float | None:
    # The location plugin reports -1 for "unknown"; absent is unknown too.
    value = coords.get(key)
    if value is None:
        return None
    number = finite(value, key, reason)
    return None if number < 0 else number
