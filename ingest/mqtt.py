"""The MQTT side of the ingester: paho-mqtt's network thread feeding an asyncio queue.

- QoS 1, a fixed client id and clean_session=False: the broker keeps our subscription and
  queues messages while we are away.
- manual_ack=True: paho would otherwise acknowledge on receipt; we acknowledge only after
  the batch holding the message is committed, so a crash means redelivery, not loss.
- The queue is bounded and the paho thread *blocks* when it is full. Back-pressure then
  reaches the broker (which holds the messages) instead of us dropping them.
- Acknowledgements carry the connection generation they belong to: after a reconnect the
  broker redelivers what we had not acknowledged, and an old packet id must not be
  acknowledged on the new connection. Redelivered fixes are stored once (idempotent).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import ssl
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from app.settings import MqttSettings
from ingest.model import Message

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Delivery:
    message: Message
    generation: int


def subscriptions(settings: MqttSettings) -> list[str]:
    """Native positions, and the OwnTracks app's location topic (owntracks/<town>/<vehicle>;
    not owntracks/#, whose event, cmd and info sub-topics are not positions)."""
    topics = [f"{settings.topic_prefix}/+/+/position", "owntracks/+/+"]
    if settings.shared_group:
        return [f"$share/{settings.shared_group}/{t}" for t in topics]
    return topics


class MqttSource:
    def __init__(
        self,
        settings: MqttSettings,
        queue_size: int,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.settings = settings
        # A thread-safe bounded queue between paho's thread and the event loop; the loop
        # is woken through call_soon_threadsafe and drains it without blocking.
        self.queue: queue.Queue[Delivery] = queue.Queue(queue_size)
        self.loop = loop
        self._wake = asyncio.Event()
        self.generation = 0
        self.connected = threading.Event()
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=settings.client_id,
            clean_session=False,
            protocol=mqtt.MQTTv311,
            manual_ack=True,
        )
        if settings.username:
            password = settings.password.get_secret_value() if settings.password else None
            client.username_pw_set(settings.username, password)
        if settings.tls:
            context = ssl.create_default_context(
                cafile=str(settings.ca_file) if settings.ca_file else None
            )
            client.tls_set_context(context)
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        # Keep many messages in flight: we acknowledge in batches, not one by one.
        client.max_inflight_messages_set(1000)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        self.client = client

    def start(self) -> None:
        self.client.connect_async(
            self.settings.host, self.settings.port, keepalive=self.settings.keepalive_s
        )
        self.client.loop_start()

    def stop(self) -> None:
        self._stopping.set()
        self.client.disconnect()
        self.client.loop_stop()

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        """QoS 1; paho queues it while disconnected and sends it on reconnect."""
        self.client.publish(topic, payload, qos=1, retain=retain)

    def ack(self, deliveries: Iterable[Delivery]) -> int:
        """Acknowledge committed messages; returns how many were sent."""
        sent = 0
        with self._lock:
            generation = self.generation
        for d in deliveries:
            if d.generation != generation or d.message.qos == 0:
                continue
            self.client.ack(d.message.mid, d.message.qos)
            sent += 1
        return sent

    # -- paho callbacks (paho's network thread) ----------------------------------------
    def _on_connect(
        self, client: mqtt.Client, _userdata: Any, flags: Any, reason: Any, _props: Any
    ) -> None:
        if reason.is_failure:
            log.error("MQTT connection refused: %s", reason)
            return
        with self._lock:
            self.generation += 1
        log.info("MQTT connected to %s:%d (session present: %s)", self.settings.host,
                 self.settings.port, flags.session_present)
        client.subscribe([(t, 1) for t in subscriptions(self.settings)])
        self.connected.set()

    def _on_disconnect(
        self, _client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any
    ) -> None:
        self.connected.clear()
        if not self._stopping.is_set():
            log.warning("MQTT disconnected (%s); paho reconnects", reason)

    def _on_message(self, _client: mqtt.Client, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            generation = self.generation
        topic = msg._topic.decode("utf-8", "replace").replace("\x00", "\ufffd")
        message = Message(
            topic=topic,
            payload=bytes(msg.payload),
            received_at=datetime.now(UTC),
            mid=msg.mid,
            qos=msg.qos,
        )
        delivery = Delivery(message, generation)
        # Block this thread until there is room: back-pressure instead of loss. A message
        # not queued because we are stopping is not acknowledged, so it is redelivered.
        while not self._stopping.is_set():
            try:
                self.queue.put(delivery, timeout=0.5)
            except queue.Full:
                continue
            self.loop.call_soon_threadsafe(self._wake.set)
            return

    # -- the event loop's side ---------------------------------------------------------
    async def next_batch(self, max_items: int, max_wait_s: float) -> list[Delivery]:
        """Wait for a first message, then collect more until ``max_items`` or until
        ``max_wait_s`` has passed since the first one."""
        items: list[Delivery] = []
        deadline: float | None = None
        while len(items) < max_items:
            try:
                items.append(self.queue.get_nowait())
                continue
            except queue.Empty:
                pass
            if items and deadline is None:
                deadline = self.loop.time() + max_wait_s
            timeout = None if deadline is None else deadline - self.loop.time()
            if timeout is not None and timeout <= 0:
                break
            self._wake.clear()
            if not self.queue.empty():
                continue
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except TimeoutError:
                break
        return items
