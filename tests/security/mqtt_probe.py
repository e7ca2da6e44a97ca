"""A blocking MQTT client for security tests that records what the broker answered:
CONNACK, SUBACK and PUBACK reason codes, disconnects, and messages received."""

from __future__ import annotations

import ssl
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion


def _wait(cond: threading.Condition, pred: Any, timeout: float) -> bool:
    with cond:
        return bool(cond.wait_for(pred, timeout))


@dataclass
class Probe:
    port: int
    username: str | None = None
    password: str | None = None
    client_id: str = "probe"
    ca_file: Path | None = None
    protocol: MQTTProtocolVersion = MQTTProtocolVersion.MQTTv5
    clean_session: bool = True  # MQTT 3.1.1 only
    connack: Any = None
    disconnects: list[str] = field(default_factory=list)
    messages: list[tuple[str, bytes]] = field(default_factory=list)
    subacks: dict[int, list[Any]] = field(default_factory=dict)
    pubacks: dict[int, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._cond = threading.Condition()
        v5 = self.protocol == MQTTProtocolVersion.MQTTv5
        c = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2,
                        client_id=self.client_id, protocol=self.protocol,
                        clean_session=None if v5 else self.clean_session)
        if self.username is not None:
            c.username_pw_set(self.username, self.password)
        if self.ca_file is not None:
            c.tls_set_context(ssl.create_default_context(cafile=str(self.ca_file)))
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_message = self._on_message
        c.on_subscribe = self._on_subscribe
        c.on_publish = self._on_publish
        self.client = c

    # -- actions (block until the broker answered, or timeout) ----------------------------
    def connect(self, timeout: float = 10.0) -> Any:
        """The CONNACK reason, or a string saying why there was none."""
        try:
            self.client.connect("127.0.0.1", self.port, keepalive=30)
        except (OSError, ssl.SSLError) as exc:
            return f"connect failed: {exc}"
        # Auto-reconnect would hide a refusal behind the next attempt.
        self.client.reconnect_delay_set(60, 60)
        self.client.loop_start()
        if not _wait(self._cond, lambda: self.connack is not None or self.disconnects,
                     timeout):
            return "no answer"
        return self.connack if self.connack is not None else \
            f"disconnected: {self.disconnects[0]}"

    @property
    def accepted(self) -> bool:
        return self.connack is not None and not self.connack.is_failure

    def subscribe(self, topic: str, timeout: float = 10.0) -> bool:
        """True when the broker granted the subscription."""
        _, mid = self.client.subscribe(topic, qos=1)
        assert mid is not None
        assert _wait(self._cond, lambda: mid in self.subacks, timeout), "no SUBACK"
        return not any(r.is_failure for r in self.subacks[mid])

    def publish(self, topic: str, payload: bytes, timeout: float = 10.0) -> Any:
        """The PUBACK reason (MQTT 5 tells a refusal; 3.1.1 says success regardless)."""
        info = self.client.publish(topic, payload, qos=1)
        assert _wait(self._cond, lambda: info.mid in self.pubacks or bool(self.disconnects),
                     timeout), "no PUBACK"
        return self.pubacks.get(info.mid, "disconnected")

    def wait_message(self, topic: str, timeout: float = 10.0) -> bytes | None:
        ok = _wait(self._cond, lambda: any(t == topic for t, _ in self.messages), timeout)
        return next(p for t, p in self.messages if t == topic) if ok else None

    def wait_disconnect(self, timeout: float = 10.0) -> bool:
        return _wait(self._cond, lambda: bool(self.disconnects), timeout)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def __enter__(self) -> Probe:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- paho callbacks ---------------------------------------------------------------------
    def _on_connect(self, _c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        with self._cond:
            self.connack = reason
            self._cond.notify_all()

    def _on_disconnect(self, _c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        with self._cond:
            self.disconnects.append(str(reason))
            self._cond.notify_all()

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with self._cond:
            self.messages.append((msg.topic, bytes(msg.payload)))
            self._cond.notify_all()

    def _on_subscribe(self, _c: Any, _u: Any, mid: int, reasons: Any, _p: Any) -> None:
        with self._cond:
            self.subacks[mid] = list(reasons)
            self._cond.notify_all()

    def _on_publish(self, _c: Any, _u: Any, mid: int, reason: Any, _p: Any) -> None:
        with self._cond:
            self.pubacks[mid] = reason
            self._cond.notify_all()


def settle(probe: Probe, seconds: float = 0.3) -> None:
    """Give in-flight deliveries a moment before asserting that nothing arrived (used only
    after a positive event proved the path works; never as the thing asserted)."""
    time.sleep(seconds)
