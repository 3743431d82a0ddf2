"""A field device's MQTT client: nothing it measures is lost to an outage.

Every record goes first into an outbox (a SQLite file in the device's folder) and leaves it only when
the broker has acknowledged it (QoS 1 PUBACK). A sender thread publishes the outbox in order, as
backlog arrays of at most 64 KiB, whenever the client is connected; ``publish()``'s return code is
checked, so a full paho queue (``MQTT_ERR_QUEUE_SIZE``) leaves the records in the outbox for later
instead of dropping them, and a power cut or a restart loses nothing either. The status topic is
retained: ``online`` on every connect, ``offline`` as the last will.

Ordering after a reconnect: paho re-sends its own unacknowledged messages right after CONNACK, behind
the ``online`` message published from ``on_connect``; the sender waits for ``online``'s PUBACK before
publishing newer records, so the broker sees everything in the order it was measured.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from service.settings import MqttAddress

from .wire import MAX_PAYLOAD_BYTES, telemetry_record, topic, yield_record

log = logging.getLogger(__name__)

MAX_INFLIGHT = 10  # our messages awaiting PUBACK; each is up to 64 KiB
READ_ROWS = 1000


class DeviceClient:
    """One device's connection; ``start()``, ``publish_*()`` from any thread, ``close()``."""

    def __init__(self, device_id: str, url: str, folder: Path, keepalive: int = 30, ca_file: str = "",
                 password: str | None = None) -> None:
        """``url`` may be mqtts:// (TLS, verified against ``ca_file``); the device logs in as its own
        id when the URL names no user and ``password`` is given (the broker binds client id to user)."""
        self.device_id = device_id
        self._addr = MqttAddress.parse(url, ca_file)
        if self._addr.username is None and password is not None:
            self._addr = dataclasses.replace(self._addr, username=device_id, password=password)
        self._keepalive = keepalive
        folder.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(folder / f"{device_id}.outbox.sqlite", check_same_thread=False,
                                   isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS outbox (id INTEGER PRIMARY KEY AUTOINCREMENT,"
                         " kind TEXT NOT NULL, body BLOB NOT NULL)")
        self._db_lock = threading.Lock()

        self._inflight: dict[int, tuple[int, int]] = {}  # mid → outbox id range, sender thread only
        self._sent_upto = 0  # highest outbox id handed to paho, sender thread only
        self._acks: queue.SimpleQueue[int] = queue.SimpleQueue()
        self._wake = threading.Event()
        self._ready = threading.Event()  # connected and the reconnect re-sends are behind us
        self._online_mid: int | None = None
        self._closing = threading.Event()

        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=device_id, clean_session=True)
        self._addr.configure(self.client)
        self.client.will_set(topic(device_id, "status"), "offline", qos=1, retain=True)
        self.client.reconnect_delay_set(1, 5)
        self.client.max_queued_messages_set(MAX_INFLIGHT + 4)  # beyond it publish() says QUEUE_SIZE
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        self._sender = threading.Thread(target=self._send_loop, name=f"device-{device_id}", daemon=True)

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> DeviceClient:
        self.client.connect_async(self._addr.host, self._addr.port, keepalive=self._keepalive)
        self.client.loop_start()
        self._sender.start()
        return self

    def close(self, timeout: float = 5.0) -> None:
        """Deliver what can be delivered within ``timeout``, say ``offline``, disconnect.
        Whatever is still unacknowledged stays in the outbox for the next start."""
        if self._ready.is_set():
            self.wait_sent(timeout)
            info = self.client.publish(topic(self.device_id, "status"), "offline", qos=1, retain=True)
            if info.rc == mqtt.MQTT_ERR_SUCCESS:
                info.wait_for_publish(timeout=min(timeout, 2.0))
        self._closing.set()
        self._wake.set()
        if self._sender.is_alive():
            self._sender.join(timeout)
        self.client.disconnect()
        self.client.loop_stop()
        with self._db_lock:
            self._db.close()

    # -- publishing -----------------------------------------------------------------------------------
    def publish_telemetry(self, ts: int, readings: dict[str, float]) -> None:
        self._enqueue("telemetry", telemetry_record(ts, readings))

    def publish_yield(self, record: dict[str, Any]) -> None:
        self._enqueue("yield", yield_record(record))

    @property
    def connected(self) -> bool:
        """Connected and sending (the reconnect re-sends are behind us)."""
        return self._ready.is_set()

    def pending(self) -> int:
        """Records not yet acknowledged by the broker."""
        with self._db_lock:
            return int(self._db.execute("SELECT count(*) FROM outbox").fetchone()[0])

    def wait_sent(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.pending():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def _enqueue(self, kind: str, body: bytes) -> None:
        with self._db_lock:
            self._db.execute("INSERT INTO outbox (kind, body) VALUES (?, ?)", (kind, body))
        self._wake.set()

    # -- paho callbacks (network thread): only record and signal ---------------------------------------
    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            log.warning("%s: broker refused the connection: %s", self.device_id, reason)
            return
        info = client.publish(topic(self.device_id, "status"), "online", qos=1, retain=True)
        self._online_mid = info.mid

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        self._ready.clear()

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason: Any, props: Any) -> None:
        if mid == self._online_mid:
            self._ready.set()
        self._acks.put(mid)
        self._wake.set()

    # -- sender thread -----------------------------------------------------------------------------------
    def _send_loop(self) -> None:
        while not self._closing.is_set():
            self._wake.wait(1.0)
            self._wake.clear()
            try:
                self._settle_acks()
                if self._ready.is_set():
                    self._send_more()
            except sqlite3.Error:
                log.exception("%s: outbox failed", self.device_id)

    def _settle_acks(self) -> None:
        while True:
            try:
                mid = self._acks.get_nowait()
            except queue.Empty:
                return
            span = self._inflight.pop(mid, None)
            if span is not None:
                with self._db_lock:
                    self._db.execute("DELETE FROM outbox WHERE id BETWEEN ? AND ?", span)

    def _send_more(self) -> None:
        while len(self._inflight) < MAX_INFLIGHT and self._ready.is_set():
            with self._db_lock:
                rows = self._db.execute("SELECT id, kind, body FROM outbox WHERE id > ? ORDER BY id LIMIT ?",
                                        (self._sent_upto, READ_ROWS)).fetchall()
            if not rows:
                return
            kind = rows[0][1]
            bodies: list[bytes] = []
            size = 2
            last = rows[0][0]
            for row_id, row_kind, body in rows:  # one message: same kind, at most 64 KiB
                if row_kind != kind or (bodies and size + len(body) + 1 > MAX_PAYLOAD_BYTES):
                    break
                bodies.append(body)
                size += len(body) + 1
                last = row_id
            payload = bodies[0] if len(bodies) == 1 else b"[" + b",".join(bodies) + b"]"
            info = self.client.publish(topic(self.device_id, kind), payload, qos=1)
            if info.rc == mqtt.MQTT_ERR_QUEUE_SIZE:
                return  # paho's queue is full: the records stay in the outbox, retried on the next ack
            if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
                log.warning("%s: publish failed: %s", self.device_id, mqtt.error_string(info.rc))
                return
            # SUCCESS, or NO_CONN: paho keeps the message and sends it after reconnecting.
            self._inflight[info.mid] = (rows[0][0], last)
            self._sent_upto = last
            if info.rc == mqtt.MQTT_ERR_NO_CONN:
                return
