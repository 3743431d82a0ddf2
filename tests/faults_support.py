"""Helpers of the fault tests: a publisher that rides out broker restarts, the ingest CLI as a real
process, a persistent session made in advance, and what the SQLite file holds, read behind the store's back.

They hold no tests. Everything here is real: real Mosquitto, real ``python -m service.cli ingest``,
the real SQLite file; nothing of ours is mocked.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from service.ingest import subscriptions
from tests.brokers import Mosquitto
from tests.conftest import CONFIG, REPO

Message = tuple[str, bytes]

def persistent_broker(workdir: Path) -> Mosquitto:
    """A private Mosquitto whose persistence really works, so a restart keeps sessions and queues."""
    return Mosquitto(workdir).start()


def saved_database(broker: Mosquitto) -> Path:
    """The broker's persistence file; fails when the broker never managed to save it."""
    db = broker.workdir / "mosquitto.db"
    log = (broker.workdir / "mosquitto.log").read_text(errors="replace")
    assert db.exists() and "Error saving" not in log, f"Mosquitto persistence is not working:\n{log[-1500:]}"
    return db


class StreamPublisher:
    """A device-side QoS 1 publisher that keeps going through a broker restart.

    paho keeps what it could not send (``MQTT_ERR_NO_CONN``, unlimited queue) and re-sends what the
    broker did not acknowledge after it reconnects by itself, which is what a careful device does; the
    test only counts a message as sent once the broker has acknowledged it (``is_published``).
    ``publish_all`` runs in a thread so the test can break things while the stream flows.
    """

    def __init__(self, broker: Mosquitto) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"faults-pub-{uuid.uuid4().hex[:8]}")
        self.client.max_inflight_messages_set(50)
        self.client.max_queued_messages_set(0)
        self.client.reconnect_delay_set(1, 2)
        self.client.on_publish = self._on_publish
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()
        self.handed = 0  # messages handed to paho
        self.refused: list[str] = []  # publish() return codes other than SUCCESS / NO_CONN
        self._acked: set[int] = set()  # mids the broker acknowledged (fewer than 65,535 per test)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason: Any, properties: Any) -> None:
        with self._lock:
            self._acked.add(mid)

    def publish(self, topic: str, payload: bytes) -> None:
        info = self.client.publish(topic, payload, qos=1)
        if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
            self.refused.append(mqtt.error_string(info.rc))
        self.handed += 1

    def publish_all(self, messages: Iterable[Message], per_second: float | None = None) -> None:
        """Publish in a background thread, at most ``per_second`` messages a second when given."""
        def run() -> None:
            started = time.monotonic()
            for i, (topic, payload) in enumerate(messages):
                if per_second is not None:
                    wait = started + i / per_second - time.monotonic()
                    if wait > 0:
                        time.sleep(wait)
                self.publish(topic, payload)

        self._thread = threading.Thread(target=run, name="faults-publisher", daemon=True)
        self._thread.start()

    def acknowledged(self) -> int:
        """Messages the broker acknowledged (PUBACK); ``is_published()`` would raise for those
        handed over while disconnected, though paho sends them after reconnecting."""
        with self._lock:
            return len(self._acked)

    def wait_acknowledged(self, timeout: float) -> int:
        """Wait for the publishing thread, then for every PUBACK; the number acknowledged."""
        deadline = time.monotonic() + timeout
        if self._thread is not None:
            self._thread.join(max(0.1, deadline - time.monotonic()))
        while self.acknowledged() < self.handed and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.acknowledged()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def make_session(broker: Mosquitto, cid: str) -> None:
    """Create ingest's persistent session (its subscriptions) before anything is published, as a
    deployment does when the worker first starts; then leave, so the broker queues for it."""
    granted = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=cid, clean_session=False)
    client.on_subscribe = lambda *args: granted.set()
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    try:
        result, _ = client.subscribe([(t, 1) for t in subscriptions("")])
        assert result == MQTTErrorCode.MQTT_ERR_SUCCESS
        assert granted.wait(10), "the session's subscriptions were not granted"
    finally:
        client.disconnect()
        client.loop_stop()


class IngestProcess:
    """``python -m service.cli ingest`` as its own process: the thing a deployment runs and SIGKILL hits."""

    def __init__(self, broker: Mosquitto, data_dir: Path, cid: str, log_dir: Path) -> None:
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("NONGYUN_", "INFLUXDB_"))},
            "NONGYUN_CONFIG": str(CONFIG),
            "NONGYUN_MQTT_URL": broker.url,
            "NONGYUN_DATA_DIR": str(data_dir),
            "NONGYUN_MQTT_CLIENT_ID": cid,
            "NONGYUN_STORE": "sqlite",
            "PYTHONPATH": str(REPO),
        }
        self.log_dir = log_dir
        log_dir.mkdir(parents=True, exist_ok=True)
        self.proc: subprocess.Popen[bytes] | None = None
        self.runs = 0
        self._log: IO[bytes] | None = None

    def start(self) -> IngestProcess:
        self.runs += 1
        self._log = open(self.log_dir / f"ingest-{self.runs}.log", "wb")  # noqa: SIM115 - closed on exit
        self.proc = subprocess.Popen([sys.executable, "-m", "service.cli", "ingest"], cwd=REPO, env=self.env,
                                     stdout=self._log, stderr=subprocess.STDOUT)
        return self

    def kill(self) -> None:
        """SIGKILL: no drain, no flush, no goodbye to the broker."""
        assert self.proc is not None and self.proc.poll() is None, self.output()
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self._close_log()

    def terminate(self, timeout: float = 30) -> int:
        """SIGTERM, the orderly stop; the exit code."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout)
        self._close_log()
        return code

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def output(self) -> str:
        return (self.log_dir / f"ingest-{self.runs}.log").read_text(errors="replace")[-3000:]

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


# -- the SQLite file, read directly ------------------------------------------------------------------


def _connect(db: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    return conn


def count_points(db: Path, metric: str) -> int:
    """Stored points of ``metric``; 0 before the store created its schema."""
    if not db.exists():
        return 0
    conn = _connect(db)
    try:
        row = conn.execute("SELECT count(*) FROM readings r JOIN metric_ids m ON m.id = r.metric"
                           " WHERE m.name = ?", (metric,)).fetchone()
        return int(row[0])
    except sqlite3.OperationalError:  # no such table yet, or a writer mid-checkpoint
        return 0
    finally:
        conn.close()


@dataclass(frozen=True)
class Tally:
    """One fault test's figures: what was sent, what the store holds, and how it differs."""

    sent: int
    stored: int  # distinct (device, ts) points of the metric
    duplicates: int  # (device, ts) keys stored more than once, whatever the village tag
    lost: int  # sent and not stored
    wrong_value: int  # stored under the right key with another value than sent
    extra: int  # stored and never sent

    def line(self, name: str) -> str:
        return (f"{name}: sent {self.sent}, stored {self.stored}, duplicates {self.duplicates}, "
                f"lost {self.lost}, wrong values {self.wrong_value}, extra {self.extra}")


def sqlite_points(db: Path, metric: str) -> list[tuple[str, int, float]]:
    """Every stored (device, ts, value) of ``metric`` in the SQLite file."""
    conn = _connect(db)
    try:
        return conn.execute(
            "SELECT d.name, r.ts, r.value FROM readings r JOIN metric_ids m ON m.id = r.metric"
            " JOIN device_ids d ON d.id = r.device WHERE m.name = ?", (metric,)).fetchall()
    finally:
        conn.close()


def tally(db: Path, metric: str, sent: dict[tuple[str, int], float]) -> Tally:
    return tally_points(sqlite_points(db, metric), sent)


def tally_points(rows: list[tuple[str, int, float]], sent: dict[tuple[str, int], float]) -> Tally:
    """Compare what was sent ((device, ts) → value) with every stored (device, ts, value)."""
    keys = Counter((device, ts) for device, ts, _ in rows)
    stored = {(device, ts): value for device, ts, value in rows}
    return Tally(
        sent=len(sent),
        stored=len(stored),
        duplicates=sum(1 for n in keys.values() if n > 1),
        lost=sum(1 for k in sent if k not in stored),
        wrong_value=sum(1 for k, v in sent.items() if k in stored and abs(stored[k] - v) > 1e-9),
        extra=sum(1 for k in stored if k not in sent),
    )


def received_counter(db: Path) -> int:
    """The store's persistent "received" counter summed over workers: messages committed, redeliveries included."""
    conn = _connect(db)
    try:
        row = conn.execute("SELECT coalesce(sum(value), 0) FROM counters WHERE name = 'received'").fetchone()
        return int(row[0])
    finally:
        conn.close()


def json_reading(ts: int, metric: str, value: float) -> bytes:
    return b'{"ts":%d,"readings":{"%s":%r}}' % (ts, metric.encode(), value)


def wait_until(cond: Any, timeout: float, what: str, every: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout} s")
        time.sleep(every)
