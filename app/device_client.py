"""A small reference device: what a plow's tracker should do so that no fix is lost.

- Every fix gets the next sequence number (0, 1, 2, …) and goes into a durable buffer
  (SQLite) before it is published (QoS 1).
- The device subscribes to its own ``…/ack`` topic. plowshare acknowledges, after each
  commit, the highest seq up to which every fix is stored; the device forgets those.
- After a reconnect, or when nothing was acknowledged for ``resend_after_s``, it
  re-sends everything still unacknowledged (in arrays). Fixes the broker lost in a crash
  are sent again; fixes stored twice are ignored by plowshare.

Used by the simulator and the fault-injection tests; small enough to port to a device.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

log = logging.getLogger(__name__)


class DeviceClient:
    def __init__(
        self,
        *,
        host: str,
        port: int,
        town: str,
        vehicle: str,
        buffer_path: Path | None = None,
        username: str | None = None,
        password: str | None = None,
        prefix: str = "plowshare",
        resend_after_s: float = 10.0,
        chunk: int = 200,
    ) -> None:
        self.topic = f"{prefix}/{town}/{vehicle}/position"
        self.ack_topic = f"{prefix}/{town}/{vehicle}/ack"
        self.resend_after_s = resend_after_s
        self.chunk = chunk
        self._lock = threading.RLock()
        self._acked_event = threading.Condition(self._lock)
        # check_same_thread=False: paho's thread and the caller share it under our lock.
        self._db = sqlite3.connect(str(buffer_path) if buffer_path else ":memory:",
                                   check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS fixes (seq INTEGER PRIMARY KEY, body BLOB)")
        self._db.execute("CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v INTEGER)")
        row = self._db.execute("SELECT v FROM meta WHERE k = 'next_seq'").fetchone()
        self._next_seq: int = row[0] if row else 0
        self.acked_seq = -1
        self.resent = 0  # fixes sent more than once (reconnects, stale acks)
        self._last_progress = time.monotonic()
        self._stop = threading.Event()
        client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2,
                             client_id=f"device-{town}-{vehicle}", clean_session=False)
        if username:
            client.username_pw_set(username, password)
        client.max_queued_messages_set(0)  # paho's own offline queue: unbounded
        client.reconnect_delay_set(1, 10)
        client.on_connect = self._on_connect
        client.on_message = self._on_message
        self.client = client
        self.host, self.port = host, port
        self._resender = threading.Thread(target=self._resend_loop, daemon=True)

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> None:
        self.client.connect_async(self.host, self.port, keepalive=15)
        self.client.loop_start()
        self._resender.start()

    def stop(self) -> None:
        self._stop.set()
        self.client.disconnect()
        self.client.loop_stop()
        self._resender.join(timeout=5)
        with self._lock:
            self._db.close()

    # -- sending -----------------------------------------------------------------------
    def send(self, fix: dict[str, Any]) -> int:
        """Buffer durably, then publish. Returns the fix's seq."""
        with self._lock:
            seq = self._next_seq
            body = orjson.dumps({**fix, "seq": seq})
            self._db.execute("BEGIN")
            self._db.execute("INSERT INTO fixes (seq, body) VALUES (?, ?)", (seq, body))
            self._db.execute("INSERT OR REPLACE INTO meta VALUES ('next_seq', ?)", (seq + 1,))
            self._db.execute("COMMIT")
            self._next_seq = seq + 1
        self.client.publish(self.topic, body, qos=1)
        return seq

    @property
    def unacked(self) -> int:
        with self._lock:
            count: int = self._db.execute("SELECT count(*) FROM fixes").fetchone()[0]
            return count

    def wait_all_acked(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        with self._lock:
            while self.acked_seq < self._next_seq - 1:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._acked_event.wait(left)
            return True

    def resend_unacked(self) -> int:
        with self._lock:
            bodies = [r[0] for r in self._db.execute("SELECT body FROM fixes ORDER BY seq")]
            self._last_progress = time.monotonic()
        for i in range(0, len(bodies), self.chunk):
            part = bodies[i:i + self.chunk]
            self.client.publish(self.topic, b"[" + b",".join(part) + b"]", qos=1)
        self.resent += len(bodies)
        if bodies:
            log.info("%s: re-sent %d unacknowledged fixes", self.topic, len(bodies))
        return len(bodies)

    # -- paho callbacks ----------------------------------------------------------------
    def _on_connect(self, client: mqtt.Client, _u: Any, flags: Any, reason: Any,
                    _p: Any) -> None:
        if reason.is_failure:
            log.error("%s: connection refused: %s", self.topic, reason)
            return
        client.subscribe(self.ack_topic, qos=1)
        if flags.session_present is False or self.unacked:
            self.resend_unacked()

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            seq = int(orjson.loads(msg.payload)["seq"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            log.warning("%s: unreadable ack %r", self.ack_topic, msg.payload[:100])
            return
        with self._lock:
            if seq <= self.acked_seq:
                return
            if seq >= self._next_seq:
                # Acknowledges fixes this device never sent (an old tracker's mark, say):
                # trusting it would throw away fixes that are not stored.
                log.warning("%s: ignoring ack %d beyond our last seq %d", self.ack_topic, seq,
                            self._next_seq - 1)
                return
            self.acked_seq = seq
            self._db.execute("DELETE FROM fixes WHERE seq <= ?", (seq,))
            self._last_progress = time.monotonic()
            self._acked_event.notify_all()

    def _resend_loop(self) -> None:
        while not self._stop.wait(1.0):
            with self._lock:
                stale = time.monotonic() - self._last_progress > self.resend_after_s
            if stale and self.client.is_connected() and self.unacked:
                self.resend_unacked()
