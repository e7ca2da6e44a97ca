"""The one normalised position model every device format is decoded into (Traccar's
`Position`), and what the pipeline passes between its steps."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Message:
    """One MQTT message as it came off the wire."""

    topic: str
    payload: bytes
    received_at: datetime  # server receive time, UTC
    mid: int = 0
    qos: int = 0


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
    speed_mps: float | None = None
    heading_deg: float | None = None
    accuracy_m: float | None = None
    plow_down: bool | None = None
    spreader_on: bool | None = None
    seq: int | None = None
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

