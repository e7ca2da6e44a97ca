"""Properties of every decoder, over generated input (hypothesis):

- any bytes, any JSON, any near-miss of a real payload: decode() never raises, and every
  message yields positions or rejections with a reason from REASONS — nothing vanishes;
- every position is storable (ranges, UTC times, JSON raw PostgreSQL accepts) and every
  rejection's text is PostgreSQL text (no NUL);
- valid fixes generated in each format's own units decode back to the same values in
  plowshare's units.
"""

from __future__ import annotations

import math
import os
import string
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.decode import Limits, decode
from ingest.formats.common import SLUG, VEHICLE
from ingest.model import REASONS, Message, Position, Rejection

RECEIVED = datetime(2026, 11, 29, 7, 15, 5, tzinfo=UTC)
# CI runs a bounded, repeatable set of examples (the same every run, so a red run is never
# luck); PLOWSHARE_HYPOTHESIS_EXAMPLES=5000 digs deeper with fresh random examples.
EXAMPLES = int(os.environ.get("PLOWSHARE_HYPOTHESIS_EXAMPLES", "150"))
PROFILE = settings(max_examples=EXAMPLES, deadline=None, database=None,
                   derandomize="PLOWSHARE_HYPOTHESIS_EXAMPLES" not in os.environ,
                   suppress_health_check=[HealthCheck.too_slow])
KNOT = 1852 / 3600

# -- generators ---------------------------------------------------------------------------
slugs = st.from_regex(r"\A[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?\Z")
idents = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9_.-]{0,10}\Z")
# MQTT topics never hold NUL (ingest/mqtt.py replaces it) and the HTTP endpoint builds
# its topics from checked names, so generated topics are any text but NUL.
any_text = st.text(st.characters(blacklist_characters="\x00"), max_size=30)


def topics(root: str, with_vehicle: bool = True, suffix: str = "") -> st.SearchStrategy[str]:
    good = (st.builds(lambda t, v: f"{root}/{t}/{v}{suffix}", slugs, idents) if with_vehicle
            else st.builds(lambda t: f"{root}/{t}", slugs))
    wild = st.builds(lambda a, b: f"{root}/{a}/{b}{suffix}", any_text, any_text)
    return st.one_of(good, good, wild, any_text)


json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=5),
                            st.dictionaries(st.text(max_size=10), inner, max_size=6)),
    max_leaves=25,
)
# Values a device could plausibly put in a field: in range, at the edges, or junk.
wild_numbers = st.one_of(
    st.floats(-200, 200), st.integers(-400, 400), st.sampled_from(
        [0, -0.0, 90, -90, 180, 360, 361, 1e20, -1e20, 2**31, 2**31 + 1, 2**63, 1e300]),
)
wild = st.one_of(wild_numbers, wild_numbers, json_scalars,
                 st.lists(wild_numbers, max_size=5))
times = st.one_of(
    st.integers(0, 4_102_444_800), st.floats(-1e12, 1e13),
    st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat()),
    st.datetimes().map(lambda d: d.isoformat()), st.text(max_size=25),
)


def near(keys: dict[str, st.SearchStrategy[Any]], fixed: dict[str, Any] | None = None
         ) -> st.SearchStrategy[dict[str, Any]]:
    """A dict with some of ``keys`` (each from its own strategy or from junk) plus junk."""
    parts = {k: st.one_of(v, wild) for k, v in keys.items()}
    return st.builds(
        lambda chosen, extra: {**(fixed or {}), **chosen, **extra},
        st.fixed_dictionaries({}, optional=parts),
        st.dictionaries(st.text(max_size=8), wild, max_size=3),
    )


native_fix = near({"time": times, "lat": wild_numbers, "lon": wild_numbers,
                   "speed": wild_numbers, "heading": wild_numbers, "accuracy": wild_numbers,
                   "plow": st.booleans(), "spreader": st.integers(0, 1),
                   "seq": st.integers(-5, 2**64 - 1)})
owntracks_doc = near({"lat": wild_numbers, "lon": wild_numbers, "tst": times,
                      "acc": wild_numbers, "alt": wild_numbers, "vel": wild_numbers,
                      "cog": wild_numbers, "created_at": times, "batt": wild_numbers,
                      "_type": st.sampled_from(["location", "lwt", "transition", "card",
                                                "encrypted", "x"])})
osmand_coords = near({"latitude": wild_numbers, "longitude": wild_numbers,
                      "speed": wild_numbers, "heading": wild_numbers,
                      "accuracy": wild_numbers, "altitude": wild_numbers})
osmand_json = st.builds(
    lambda device, loc: {"device_id": device, "location": loc},
    st.one_of(idents, json_scalars),
    st.one_of(near({"timestamp": times, "coords": osmand_coords, "mock": st.booleans(),
                    "extras": st.dictionaries(st.sampled_from(["blade", "spreader"]),
                                              st.sampled_from(["down", "up", "on", "?"]))}),
              st.lists(near({"timestamp": times, "coords": osmand_coords}), max_size=3),
              json_values),
)
form_values = st.one_of(wild_numbers.map(str), st.text(max_size=12), st.sampled_from(
    ["true", "false", "down", "up", "on", "off", "nan", "inf", "1_0", " 1", "60.1,26.1",
     "2026-11-29T07:15:02Z", "2026-11-29T07:15:02 02:00", ""]))
osmand_form = st.dictionaries(
    st.one_of(st.sampled_from(["id", "deviceid", "timestamp", "lat", "lon", "location",
                               "speed", "bearing", "heading", "altitude", "accuracy",
                               "valid", "blade", "plow", "spreader", "batt"]),
              st.text(max_size=6)),
    form_values, max_size=12,
).map(lambda d: urlencode(d).encode())
drammen_point = st.one_of(st.lists(wild_numbers, min_size=0, max_size=5), json_values)
drammen_feature = st.one_of(
    st.builds(lambda props, pts: {"type": "Feature", "properties": props,
                                  "geometry": {"type": "LineString", "coordinates": pts}},
              near({"alt_vehicle": st.one_of(idents, json_scalars),
                    "vehicle_id": st.integers(-(2**63), 2**64 - 1),
                    "from_rsu": st.integers(0, 2**63),
                    "toggle_state": st.sampled_from(["SALT", "GRAVEL", "DEFAULT", "X"])}),
              st.lists(drammen_point, max_size=4)),
    json_values,
)
drammen_doc = st.builds(lambda fs: {"type": "FeatureCollection", "features": fs},
                        st.lists(drammen_feature, max_size=4))

content_types = st.sampled_from([None, "application/json", "application/json; charset=x",
                                 "application/x-www-form-urlencoded", "text/plain", ""])


def as_bytes(doc: Any) -> bytes:
    return orjson.dumps(doc)


# -- the invariants -----------------------------------------------------------------------
def check(msg: Message, limits: Limits | None = None) -> tuple[list[Position],
                                                                list[Rejection]]:
    positions, rejections = decode(msg, limits or Limits())
    assert positions or rejections, "a message vanished"
    for r in rejections:
        assert r.reason in REASONS, r.reason
        assert isinstance(r.detail, str) and "\x00" not in r.detail
        assert r.topic == msg.topic and r.received_at == msg.received_at
        assert isinstance(r.payload, bytes)
        assert r.town is None or SLUG.match(r.town)
        assert r.vehicle is None or VEHICLE.match(r.vehicle)
    for p in positions:
        storable(p, msg)
    return positions, rejections


def storable(p: Position, msg: Message) -> None:
    assert p.topic == msg.topic and p.received_at == msg.received_at
    assert SLUG.match(p.town) and VEHICLE.match(p.vehicle)
    assert -90 <= p.lat <= 90 and -180 <= p.lon <= 180 and (p.lat, p.lon) != (0, 0)
    for t in (p.fix_time, p.device_time):
        assert t is None or t.utcoffset() == timedelta(0)
    assert p.speed_mps is None or 0 <= p.speed_mps <= 100
    assert p.heading_deg is None or 0 <= p.heading_deg < 360
    assert p.accuracy_m is None or 0 <= p.accuracy_m <= 100_000
    assert p.altitude_m is None or -1000 <= p.altitude_m <= 20_000
    assert p.seq is None or 0 <= p.seq < 2**63
    for value in (p.lat, p.lon, p.speed_mps, p.heading_deg, p.accuracy_m, p.altitude_m):
        assert value is None or math.isfinite(value)
    p.raw.decode("utf-8")
    assert b"\\u0000" not in p.raw
    orjson.loads(p.raw)  # pings.raw is jsonb


def message(topic: str, payload: bytes, content_type: str | None = None) -> Message:
    return Message(topic, payload, RECEIVED, content_type=content_type)


ALL_TOPICS = st.one_of(topics("plowshare", suffix="/position"), topics("owntracks"),
                       topics("osmand"), topics("drammen", with_vehicle=False), any_text)


@PROFILE
@given(ALL_TOPICS, st.binary(max_size=600), content_types)
def test_any_bytes_on_any_topic(topic: str, payload: bytes, ct: str | None) -> None:
    check(message(topic, payload, ct))


@PROFILE
@given(ALL_TOPICS, json_values, content_types)
def test_any_json_on_any_topic(topic: str, doc: Any, ct: str | None) -> None:
    check(message(topic, as_bytes(doc), ct))


@PROFILE
@given(topics("plowshare", suffix="/position"),
       st.one_of(native_fix, st.lists(native_fix, max_size=6)))
def test_native_near_misses(topic: str, doc: Any) -> None:
    positions, rejections = check(message(topic, as_bytes(doc)))
    if isinstance(doc, list) and doc and rejections and rejections[0].index is not None:
        # an array: one outcome per fix, in order
        assert sorted(x.index for x in [*positions, *rejections]) == list(range(len(doc)))


@PROFILE
@given(topics("owntracks"), owntracks_doc)
def test_owntracks_near_misses(topic: str, doc: Any) -> None:
    positions, rejections = check(message(topic, as_bytes(doc)))
    assert len(positions) + len(rejections) == 1


@PROFILE
@given(topics("osmand"), st.one_of(osmand_json.map(as_bytes), osmand_form), content_types)
def test_osmand_near_misses(topic: str, payload: bytes, ct: str | None) -> None:
    check(message(topic, payload, ct))


@PROFILE
@given(topics("drammen", with_vehicle=False), drammen_doc)
def test_drammen_near_misses(topic: str, doc: Any) -> None:
    positions, rejections = check(message(topic, as_bytes(doc)))
    indexed = sorted(x.index for x in [*positions, *rejections] if x.index is not None)
    assert indexed == sorted(set(indexed)), "two outcomes claim the same point"


@settings(max_examples=50, deadline=None, database=None, derandomize=True)
@given(st.integers(1, 40), st.integers(1, 40))
def test_limits_hold_for_every_format(n: int, limit: int) -> None:
    fix = {"time": 1795936502, "lat": 60.1, "lon": 26.1}
    feature = {"type": "Feature", "properties": {"alt_vehicle": "a"},
               "geometry": {"type": "LineString",
                            "coordinates": [[26.1, 60.1, 0, 1795936502 + i] for i in range(n)]}}
    loc = {"timestamp": 1795936502, "coords": {"latitude": 60.1, "longitude": 26.1}}
    cases = [
        message("plowshare/t/a/position", as_bytes([fix] * n)),
        message("drammen/t", as_bytes({"type": "FeatureCollection", "features": [feature]})),
        message("osmand/t/a", as_bytes({"device_id": "a", "location": [loc] * n}),
                "application/json"),
    ]
    for m in cases:
        positions, rejections = check(m, Limits(max_fixes=limit))
        if n > limit:
            assert positions == [] and [r.reason for r in rejections] == ["too_many_fixes"]
        else:
            assert len(positions) == n
    big = message("owntracks/t/a", b" " * 300 + b"{}")
    assert [r.reason for r in check(big, Limits(max_payload_bytes=299))[1]] == [
        "payload_too_large"]


# -- round trips: values generated in each format's units come back in ours -------------
finite_lat = st.floats(-89.9, 89.9).filter(lambda v: abs(v) > 1e-6)
finite_lon = st.floats(-179.9, 179.9)
whole_seconds = st.integers(946_684_800, 4_102_444_799)  # 2000 … 2099
fixes = st.fixed_dictionaries({
    "lat": finite_lat, "lon": finite_lon, "t": whole_seconds,
    "ms": st.integers(0, 999),
    "speed": st.floats(0, 99.9), "heading": st.floats(0, 359.99),
    "accuracy": st.floats(0, 10_000), "altitude": st.floats(-500, 9000),
    "plow": st.none() | st.booleans(), "spreader": st.none() | st.booleans(),
    "seq": st.integers(0, 2**63 - 1),
})


def utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


@PROFILE
@given(fixes, st.booleans())
def test_native_round_trip(f: dict[str, Any], iso: bool) -> None:
    when = utc(f["t"]) + timedelta(milliseconds=f["ms"])
    doc = {"time": when.isoformat() if iso else f["t"], "lat": f["lat"], "lon": f["lon"],
           "speed": f["speed"], "heading": f["heading"], "accuracy": f["accuracy"],
           "plow": f["plow"], "spreader": f["spreader"], "seq": f["seq"]}
    [p], [] = check(message("plowshare/kouvola/plow-7/position", as_bytes(doc)))
    assert p.fix_time == (when if iso else utc(f["t"]))
    assert (p.lat, p.lon, p.speed_mps, p.heading_deg, p.accuracy_m) == (
        f["lat"], f["lon"], f["speed"], f["heading"], f["accuracy"])
    assert (p.plow_down, p.spreader_on, p.seq) == (f["plow"], f["spreader"], f["seq"])


@PROFILE
@given(fixes, st.integers(0, 30))
def test_owntracks_round_trip_km_h_and_omitted_zeros(f: dict[str, Any], lag: int) -> None:
    doc: dict[str, Any] = {"_type": "location", "lat": f["lat"], "lon": f["lon"],
                           "tst": f["t"], "created_at": f["t"] + lag, "tid": "p7",
                           "vel": f["speed"] * 3.6, "cog": f["heading"],
                           "acc": f["accuracy"], "alt": f["altitude"]}
    # as the apps send it: these four are left out when zero
    doc = {k: v for k, v in doc.items() if v != 0 or k not in ("vel", "cog", "acc", "alt")}
    [p], [] = check(message("owntracks/kouvola/plow-7", as_bytes(doc)))
    assert (p.fix_time, p.device_time) == (utc(f["t"]), utc(f["t"] + lag))
    assert p.speed_mps == pytest.approx(f["speed"], rel=1e-9, abs=1e-12)
    assert (p.lat, p.lon, p.heading_deg, p.accuracy_m, p.altitude_m) == (
        f["lat"], f["lon"], f["heading"], f["accuracy"], f["altitude"])


def _switch(state: bool | None, on: str, off: str) -> dict[str, str]:
    return {} if state is None else {"x": on if state else off}


@PROFILE
@given(fixes, st.sampled_from(["s", "ms", "iso"]), st.sampled_from(["query", "form"]))
def test_osmand_form_round_trip_knots(f: dict[str, Any], clock: str, kind: str) -> None:
    if clock == "s":
        # The protocol reads any value above 2^31 as milliseconds, so epoch seconds work
        # only until 2038-01-19: from then on devices must send ms or ISO 8601.
        f = {**f, "t": min(f["t"], 2**31)}
    when = utc(f["t"])
    stamp = {"s": str(f["t"]), "ms": str(f["t"] * 1000 + f["ms"]),
             "iso": when.isoformat()}[clock]
    fields = {"id": "plow-7", "timestamp": stamp, "lat": repr(f["lat"]),
              "lon": repr(f["lon"]), "speed": repr(f["speed"] / KNOT),
              "bearing": repr(f["heading"]), "accuracy": repr(f["accuracy"]),
              "altitude": repr(f["altitude"]), "hdop": "0.9"}
    if f["plow"] is not None:
        fields["blade"] = "down" if f["plow"] else "up"
    if f["spreader"] is not None:
        fields["spreader"] = "on" if f["spreader"] else "off"
    ct = "application/x-www-form-urlencoded" if kind == "form" else None
    [p], [] = check(message("osmand/kouvola/plow-7", urlencode(fields).encode(), ct))
    assert p.fix_time == when + (timedelta(milliseconds=f["ms"]) if clock == "ms"
                                 else timedelta(0))
    assert p.speed_mps == pytest.approx(f["speed"], rel=1e-9, abs=1e-12)
    assert (p.lat, p.lon, p.heading_deg, p.accuracy_m, p.altitude_m) == (
        f["lat"], f["lon"], f["heading"], f["accuracy"], f["altitude"])
    assert (p.plow_down, p.spreader_on) == (f["plow"], f["spreader"])
    assert orjson.loads(p.raw)["hdop"] == "0.9"


@PROFILE
@given(st.lists(fixes, min_size=1, max_size=4))
def test_osmand_json_round_trip_mps(fs: list[dict[str, Any]]) -> None:
    def location(f: dict[str, Any]) -> dict[str, Any]:
        when = utc(f["t"]) + timedelta(milliseconds=f["ms"])
        extras = {} if f["plow"] is None else {"blade": "down" if f["plow"] else "up"}
        return {"timestamp": when.isoformat().replace("+00:00", "Z"),
                "coords": {"latitude": f["lat"], "longitude": f["lon"],
                           "speed": f["speed"], "heading": f["heading"],
                           "accuracy": f["accuracy"], "altitude": f["altitude"]},
                "extras": extras}

    body = {"device_id": "plow-7", "location": [location(f) for f in fs]}
    positions, [] = check(message("osmand/kouvola/plow-7", as_bytes(body),
                                  "application/json"))
    for p, f in zip(positions, fs, strict=True):
        assert p.fix_time == utc(f["t"]) + timedelta(milliseconds=f["ms"])
        assert (p.lat, p.lon, p.speed_mps, p.heading_deg, p.accuracy_m, p.altitude_m) == (
            f["lat"], f["lon"], f["speed"], f["heading"], f["accuracy"], f["altitude"])
        assert p.plow_down == f["plow"]


@PROFILE
@given(st.lists(st.tuples(st.sampled_from(["519063249", "815597455", "a.b-c_d"]),
                          st.sampled_from(["SALT", "GRAVEL", "DEFAULT"]),
                          st.lists(fixes, min_size=1, max_size=4)), min_size=1, max_size=4))
def test_drammen_round_trip(pieces: list[tuple[str, str, list[dict[str, Any]]]]) -> None:
    doc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"alt_vehicle": v, "toggle_state": state},
         "geometry": {"type": "LineString",
                      "coordinates": [[f["lon"], f["lat"], f["altitude"], f["t"]]
                                      for f in fs]}}
        for v, state, fs in pieces]}
    positions, [] = check(message("drammen/drammen", as_bytes(doc)))
    expected = [(v, f["lat"], f["lon"], f["altitude"], utc(f["t"]), state != "DEFAULT")
                for v, state, fs in pieces for f in fs]
    assert [(p.vehicle, p.lat, p.lon, p.altitude_m, p.fix_time, p.spreader_on)
            for p in positions] == expected
    assert [p.index for p in positions] == list(range(len(expected)))


def test_reason_names_are_snake_case_and_documented() -> None:
    for name, meaning in REASONS.items():
        assert set(name) <= set(string.ascii_lowercase + "_") and meaning
