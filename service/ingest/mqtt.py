"""The paho-mqtt edge of ingest: a persistent QoS 1 session whose messages are acknowledged after commit.

MQTT 3.1.1, not 5: paho decodes v5 properties on every message (+47 % CPU per message,
MEASUREMENTS.md), and Mosquitto accepts ``$share/`` subscriptions from 3.1.1 clients too. The
fixed client id and ``clean_session=False`` make the broker keep what was not acknowledged while
this worker is away; ``manual_ack=True`` means nothing is acknowledged before the pipeline has
committed it. The broker then sends at most its ``max_inflight_messages`` unacknowledged
messages at a time, which is the natural back-pressure of the whole path.

Acknowledgement tokens carry the connection they came from: an ack is sent only on the
connection that delivered the message. After a reconnect the broker resends the unacknowledged
messages itself; the copies are committed again, which the store's idempotent points absorb.
"""

from __future__ import annotations

import logging
import struct
import threading
import time
from collections import deque
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from ..settings import Settings
from .pipeline import IngestPipeline

log = logging.getLogger(__name__)

TOPICS = ("nongyun/v1/+/telemetry", "nongyun/v1/+/yield", "nongyun/v1/+/status")
KEEPALIVE_S = 30
RECONNECT_MIN_S = 1
RECONNECT_MAX_S = 30
CHURN_WINDOW_S = 600  # reconnects are counted over the last 10 minutes
CHURN_MAX = 3  # more reconnects than this in the window degrade health
_MID_BITS = 16
PUBACK = PacketTypes.PUBACK << 4  # the fixed header's first byte: 0x40


def subscriptions(shared_group: str) -> list[str]:
    """The topic filters, as a shared subscription when several workers split the load."""
    return [f"$share/{shared_group}/{t}" if shared_group else t for t in TOPICS]


def make_token(generation: int, qos: int, mid: int) -> int:
    """Pack (connection generation, qos, mid) into the opaque int the pipeline hands back."""
    return (generation << (_MID_BITS + 2)) | ((qos & 3) << _MID_BITS) | (mid & 0xFFFF)


def split_token(token: int) -> tuple[int, int, int]:
    return token >> (_MID_BITS + 2), (token >> _MID_BITS) & 3, token & 0xFFFF


class MqttIngest:
    """Lifecycle: ``start()`` (background thread) or ``run_forever()``; then ``stop()``.

    Build the pipeline with ``ack=lambda tokens: ingest.ack(tokens)`` (``service.ingest.connect``
    does the wiring).
    """

    def __init__(self, settings: Settings, pipeline: IngestPipeline, *, keepalive: int = KEEPALIVE_S,
                 reconnect_min_s: int = RECONNECT_MIN_S, reconnect_max_s: int = RECONNECT_MAX_S,
                 churn_window_s: float = CHURN_WINDOW_S, churn_max: int = CHURN_MAX) -> None:
        self.settings = settings
        self.pipeline = pipeline
        self.address = settings.mqtt
        self.client_id = settings.values.mqtt_client_id
        self.topics = subscriptions(settings.values.mqtt_shared_group)
        self.keepalive = keepalive
        self._generation = 0
        self._closing = False
        self._subscribed = threading.Event()
        self._last_error = ""
        self._connects = 0
        self._acks_sent = 0
        self._stale_acks = 0
        self.churn_window_s = churn_window_s
        self.churn_max = churn_max
        self._connected_at: deque[float] = deque(maxlen=1000)  # monotonic times of successful connects
        self._session_lost_at: float | None = None  # a reconnect found no session: its queue is gone
        self._sessions_lost = 0
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            clean_session=False,
            protocol=MQTTProtocolVersion.MQTTv311,
            manual_ack=True,
        )
        self.address.configure(client)  # user, password and, for mqtts://, TLS
        client.reconnect_delay_set(reconnect_min_s, reconnect_max_s)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        self._client = client

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the pipeline and a network thread that connects, and reconnects, by itself."""
        self._closing = False
        self.pipeline.start()
        self._client.connect_async(self.address.host, self.address.port, self.keepalive)
        self._client.loop_start()

    def run_forever(self) -> None:
        """Block in the network loop (``nongyun ingest``); returns after ``stop()`` from another thread."""
        self._closing = False
        self.pipeline.start()
        self._client.connect_async(self.address.host, self.address.port, self.keepalive)
        try:
            self._client.loop_forever(retry_first_connection=True)
        finally:
            self.pipeline.stop(drain=False)

    def stop(self, drain: bool = True, timeout: float = 10.0) -> bool:
        """Stop taking messages, commit and acknowledge what was taken (``drain``), then disconnect.

        Returns whether everything taken was committed; what was not is redelivered next session.
        """
        self._closing = True
        drained = self.pipeline.stop(drain=drain, timeout=timeout)
        self._flush_acks(timeout=2.0)
        self._client.disconnect()
        self._client.loop_stop()
        return drained

    def wait_subscribed(self, timeout: float = 10.0) -> bool:
        """For tests and start-up: True once the subscriptions of the current connection are granted."""
        return self._subscribed.wait(timeout)

    # -- health ----------------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return bool(self._client.is_connected())

    def stats(self) -> Any:
        """The pipeline's figures, so this worker can stand for its pipeline in /metrics and health."""
        return self.pipeline.stats()

    def reconnects_recent(self, now: float | None = None) -> int:
        """Reconnects (connects after the first) in the last ``churn_window_s`` seconds."""
        now = time.monotonic() if now is None else now
        recent = sum(1 for t in self._connected_at if now - t <= self.churn_window_s)
        return recent - 1 if len(self._connected_at) == recent else recent  # the first connect is no churn

    def link_health(self, now: float | None = None) -> list[str]:
        """Human-readable reasons the broker link is degraded; empty when it is sound."""
        now = time.monotonic() if now is None else now
        reasons = []
        if not self.connected:
            reasons.append(f"not connected to the broker ({self._last_error or 'connecting'})")
        churn = self.reconnects_recent(now)
        if churn > self.churn_max:
            reasons.append(f"{churn} reconnects in the last {self.churn_window_s / 60:g} minutes "
                           f"(more than {self.churn_max}): the broker or the network keeps dropping us")
        if self._session_lost_at is not None and now - self._session_lost_at <= self.churn_window_s:
            ago = int(now - self._session_lost_at)
            reasons.append(f"the broker had no session for {self.client_id} on a reconnect {ago} s ago "
                           "(session present: false): messages queued while ingest was away may be lost")
        return reasons

    def state(self) -> dict[str, Any]:
        return {
            "connected": self.connected,
            "broker": f"{self.address.host}:{self.address.port}",
            "client_id": self.client_id,
            "subscriptions": list(self.topics),
            "connects": self._connects,
            "acks_sent": self._acks_sent,
            "stale_acks": self._stale_acks,
            "last_error": self._last_error,
            "reconnects_recent": self.reconnects_recent(),
            "sessions_lost": self._sessions_lost,
            "degraded": self.link_health(),
        }

    # -- acknowledgement (writer thread) ---------------------------------------------------------

    def ack(self, tokens: list[int]) -> None:
        """Acknowledge committed messages; called by the pipeline's writer with one batch of tokens."""
        generation = self._generation
        mids: list[int] = []
        for token in tokens:
            gen, qos, mid = split_token(token)
            if qos == 0:
                continue
            if gen != generation:
                self._stale_acks += 1  # that connection is gone; the broker resends the message
                continue
            if qos == 1:
                mids.append(mid)
            else:
                self._client.ack(mid, qos)
                self._acks_sent += 1
        if mids:
            send_pubacks(self._client, mids)
            self._acks_sent += len(mids)

    def _flush_acks(self, timeout: float) -> None:
        """Give the network thread a moment to write queued PUBACKs before DISCONNECT follows them."""
        deadline = time.monotonic() + timeout
        while self._client.want_write() and self.connected and time.monotonic() < deadline:
            time.sleep(0.01)

    # -- paho callbacks (network thread) ---------------------------------------------------------

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: mqtt.ConnectFlags,
                    reason: ReasonCode, properties: Any) -> None:
        if reason.is_failure:
            self._last_error = f"connect refused: {reason}"
            log.error("broker %s refused the connection: %s", self.address.host, reason)
            return
        self._generation += 1
        self._connects += 1
        self._connected_at.append(time.monotonic())
        if self._connects > 1 and not flags.session_present:  # clean_session is False: it should be there
            self._session_lost_at = time.monotonic()
            self._sessions_lost += 1
            log.warning("the broker lost the session of %s (session present: false on a reconnect)",
                        self.client_id)
        self._last_error = ""
        log.info("connected to %s:%s as %s (session present: %s)", self.address.host, self.address.port,
                 self.client_id, flags.session_present)
        # (Re)subscribe every time: a broker that lost its state must not leave us deaf.
        result, _ = client.subscribe([(t, 1) for t in self.topics])
        if result != MQTTErrorCode.MQTT_ERR_SUCCESS:
            log.error("subscribe failed: %s", mqtt.error_string(result))

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, reasons: list[ReasonCode],
                      properties: Any) -> None:
        failed = [str(r) for r in reasons if r.is_failure]
        if failed:
            self._last_error = f"subscription refused: {', '.join(failed)}"
            log.error("broker refused subscriptions %s: %s", self.topics, failed)
        else:
            self._subscribed.set()

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: mqtt.DisconnectFlags,
                       reason: ReasonCode, properties: Any) -> None:
        self._subscribed.clear()
        if not self._closing:
            self._last_error = f"disconnected: {reason}"
            log.warning("disconnected from the broker (%s); reconnecting", reason)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        # The hot path: one call per message on the network thread, which shares the GIL with the
        # writer. Nothing here decodes; the token packs (generation, qos, mid) as make_token does.
        if self._closing:
            return  # not acknowledged: the broker redelivers it to the next session
        try:
            topic = message.topic
        except UnicodeDecodeError:  # brokers validate UTF-8, but a bad topic must not kill this thread
            topic = message._topic.decode("utf-8", errors="replace")
        payload = message.payload
        if not isinstance(payload, bytes):  # paho gives bytes; its type allows a bytearray
            payload = bytes(payload)
        self.pipeline.submit(topic, payload,
                             (self._generation << (_MID_BITS + 2)) | (message.qos << _MID_BITS) | message.mid,
                             message.retain)


_PUBACK = struct.Struct("!BBH")


def send_pubacks(client: mqtt.Client, mids: list[int]) -> None:
    """Queue the PUBACKs of ``mids`` as one write, or one ``client.ack`` each where that is not possible.

    paho's ``ack`` builds, queues and signals its network thread once per message (a socket write
    per ack, from the writer thread). Concatenated PUBACK packets are what the broker reads anyway;
    queued as one outgoing packet they cost one wake-up per batch. This uses paho's private
    ``_packet_queue`` (paho-mqtt 2.x; bench/README.md has what it buys) and falls back to the
    public ``ack`` when it is absent.
    """
    queue = getattr(client, "_packet_queue", None)
    if queue is None or not getattr(client, "_manual_ack", False):
        for mid in mids:
            client.ack(mid, 1)
        return
    pack = _PUBACK.pack
    queue(PUBACK, b"".join([pack(PUBACK, 2, mid) for mid in mids]), 0, 0)
