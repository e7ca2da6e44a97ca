"""Decoding: pick the device format from the topic's first level, decode it into
:class:`ingest.model.Position` values and named rejections.

- ``<prefix>/<town>/<vehicle>/position``: native JSON (:mod:`ingest.formats.native`);
- ``owntracks/<town>/<vehicle>``: OwnTracks JSON over MQTT (:mod:`ingest.formats.owntracks`);
- ``osmand/<town>/<vehicle>``: OsmAnd / Traccar Client over HTTP
  (:mod:`ingest.formats.osmand`);
- ``drammen/<town>``: the Drammen vendor GeoJSON feed (:mod:`ingest.formats.drammen`).

Pure: no I/O, the receive time comes in with the message. Never raises for any input: a
message that is not understood becomes a rejection with a reason from
:data:`ingest.model.REASONS`. ``decode_message``, ``parse_topic`` and ``parse_time`` keep
their old meaning (the native format) for existing callers.
"""

from __future__ import annotations

from ingest.formats import drammen, native, osmand, owntracks
from ingest.formats.common import Decoded, Invalid, Limits, parse_time
from ingest.formats.native import KNOWN_KEYS, parse_topic
from ingest.model import Message

__all__ = ["KNOWN_KEYS", "Decoded", "Invalid", "Limits", "decode", "decode_message",
           "parse_time", "parse_topic"]


def decode(msg: Message, limits: Limits, prefix: str = "plowshare") -> Decoded:
    root = msg.topic.split("/", 1)[0]
    # The configured native prefix wins, so a deployment may even name it "owntracks".
    if root == prefix:
        return native.decode_message(msg, limits, prefix)
    if root == owntracks.ROOT:
        return owntracks.decode_message(msg, limits)
    if root == osmand.ROOT:
        return osmand.decode_message(msg, limits)
    if root == drammen.ROOT:
        return drammen.decode_message(msg, limits)
    return native.decode_message(msg, limits, prefix)  # its bad_topic names the format


def decode_message(
    msg: Message,
    *,
    prefix: str = "plowshare",
    max_payload_bytes: int = 256 * 1024,
    max_fixes: int = 2000,
) -> Decoded:
    """The native format only (the original entry point)."""
    return native.decode_message(msg, Limits(max_payload_bytes, max_fixes), prefix)
