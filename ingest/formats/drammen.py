"""The Drammen-region vendor feed (Buskerudbyen municipal plow map): a real
multi-vehicle format, fetched from the vendor and handed to the pipeline as one message.

Topic ``drammen/<town>``. Payload: a GeoJSON FeatureCollection of *trip pieces*::

    {"type": "Feature",
     "geometry": {"type": "LineString",
                  "coordinates": [[10.145324, 59.719246, 0, 1676319682], ...]},
     "properties": {"alt_vehicle": "1090015369", "vehicle_id": null,
                    "toggle_state": "SALT", "start": "2023-02-13 20:21:22+00:00", ...}}

Each coordinate ``[lon, lat, alt, unix_time]`` is one fix of the piece's vehicle
(``alt_vehicle``, else ``vehicle_id``). ``toggle_state`` is the spreader: ``SALT`` and
``GRAVEL`` → spreading, ``DEFAULT`` → not; any other state decodes as unknown (None) and
stays visible in ``raw``. The feed says nothing about the blade, so ``plow_down`` is None.

The fix time is the coordinate's own ``unix_time``; ``start`` is not used: in the real
sample one piece's ``start`` is 61 days and 6 hours after its first fix. A coordinate
without a time is rejected ``missing_field`` — we never invent a fix time.

Other features — the roadside weather station's Point with ``from_rsu`` and no vehicle —
carry no position: each is recorded once as ``not_a_position``.

``raw`` of each fix is a one-point Feature: the piece's properties and this coordinate.
``index`` counts points across the whole feed in order (a feature refused as a whole
takes the index its first point would have), so any rejection can be found in the
original payload.
"""

from __future__ import annotations

from typing import Any

import orjson

from ingest.formats.common import (
    SLUG,
    VEHICLE,
    Decoded,
    Invalid,
    Limits,
    Refused,
    altitude,
    coordinates,
    epoch,
    finite,
    json_storable,
    load_json,
    open_message,
    show,
    whole,
)
from ingest.model import Message, Position, Rejection

ROOT = "drammen"

SPREADER = {"SALT": True, "GRAVEL": True, "DEFAULT": False}


def parse_topic(topic: str) -> str:
    parts = topic.split("/")
    if len(parts) != 2 or parts[0] != ROOT:
        raise Invalid("bad_topic", "expected drammen/<town>")
    if not SLUG.match(parts[1]):
        raise Invalid("bad_topic", "town must be lower-case letters, digits and '-'")
    return parts[1]


def decode_message(msg: Message, limits: Limits) -> Decoded:
    try:
        town, _ = open_message(msg, limits, lambda topic: (parse_topic(topic), None))
        doc = load_json(msg, town, None)
    except Refused as refused:
        return refused.decoded
    features = doc.get("features") if isinstance(doc, dict) else None
    if not isinstance(features, list) or doc.get("type") != "FeatureCollection":
        return whole(msg, "bad_shape", "expected a GeoJSON FeatureCollection", town)
    if not features:
        return whole(msg, "bad_shape", "no features", town)
    total = sum(max(1, len(_points(f))) for f in features)
    if total > limits.max_fixes:
        return whole(msg, "too_many_fixes", f"{total} fixes > {limits.max_fixes}", town)

    positions: list[Position] = []
    rejections: list[Rejection] = []
    index = 0
    for number, feature in enumerate(features):
        points = _points(feature)
        try:
            vehicle, props = _piece(feature, number)
        except Invalid as exc:
            rejections.append(Rejection(exc.reason, exc.detail, msg.topic,
                                        orjson.dumps(feature), msg.received_at, town,
                                        None, index))
            index += max(1, len(points))
            continue
        for point in points:
            raw = orjson.dumps({"type": "Feature", "properties": props,
                                "geometry": {"type": "Point", "coordinates": point}})
            try:
                positions.append(_fix(point, props, msg, town, vehicle, raw, index))
            except Invalid as exc:
                rejections.append(Rejection(
                    exc.reason, f"{exc.detail} (feature {number})", msg.topic, raw,
                    msg.received_at, town, vehicle, index))
            index += 1
    return positions, rejections


def _points(feature: Any) -> list[Any]:
    geometry = feature.get("geometry") if isinstance(feature, dict) else None
    if not isinstance(geometry, dict):
        return []
    coords = geometry.get("coordinates")
    kind = geometry.get("type")
    if kind in ("LineString", "MultiPoint") and isinstance(coords, list):
        return coords
    if kind == "Point":
        return [coords]
    return []


def _piece(feature: Any, number: int) -> tuple[str, dict[str, Any]]:
    """The vehicle ident and properties of one trip piece."""
    if not isinstance(feature, dict) or not isinstance(feature.get("properties"), dict):
        raise Invalid("bad_shape", f"feature {number} is not a Feature with properties")
    props: dict[str, Any] = feature["properties"]
    ident = props.get("alt_vehicle")
    if ident is None:
        ident = props.get("vehicle_id")
    if ident is None:
        if "from_rsu" in props:
            raise Invalid("not_a_position",
                          f"feature {number}: a roadside weather station observation")
        raise Invalid("not_a_position", f"feature {number} names no vehicle")
    if isinstance(ident, int) and not isinstance(ident, bool):
        ident = str(ident)
    if not isinstance(ident, str) or not VEHICLE.match(ident):
        raise Invalid("bad_vehicle", f"feature {number}: vehicle id {show(ident)} is not "
                                     "letters, digits, '_', '.', '-' (≤ 64)")
    if not _points(feature):
        raise Invalid("bad_shape", f"feature {number} has no LineString/Point coordinates")
    return ident, props


def _fix(
    point: Any, props: dict[str, Any], msg: Message, town: str, vehicle: str, raw: bytes,
    index: int,
) -> Position:
    json_storable(raw)
    if not isinstance(point, list) or not 2 <= len(point) <= 4:
        raise Invalid("bad_shape", "a coordinate must be [lon, lat, alt, unix_time]")
    if len(point) < 4:
        raise Invalid("missing_field", "the coordinate has no unix_time")
    lon, lat, alt, seconds = point
    lat, lon = coordinates(finite(lat, "lat", "bad_coordinates"),
                           finite(lon, "lon", "bad_coordinates"))
    state = props.get("toggle_state")
    return Position(
        topic=msg.topic,
        town=town,
        vehicle=vehicle,
        fix_time=epoch(finite(seconds, "unix_time", "bad_time"), "unix_time"),
        received_at=msg.received_at,
        lat=lat,
        lon=lon,
        altitude_m=None if alt is None else altitude(
            finite(alt, "alt", "bad_altitude"), "alt"),
        spreader_on=SPREADER.get(state) if isinstance(state, str) else None,
        raw=raw,
        index=index,
    )
