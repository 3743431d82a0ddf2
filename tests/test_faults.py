"""Issue 7: a reading the broker acknowledged is stored exactly once, whatever fails in between.

Real Mosquitto (its own instance, persistence on, so it can be restarted), the real ingest (as a
separate ``python -m service.cli ingest`` process where it is killed), the real SQLite file (and, for
the outage, the protocol-faithful fake InfluxDB answering 503). Each test counts what was sent against
what the store holds, key by key and value by value, and prints the figures (``-s`` shows them).
"""

# ruff: noqa: F811  (the store fixture imported from tests/test_ingest.py is a parameter here)

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from service.context import Context
from service.store.sqlite import SqliteStore
from service.times import now_ms
from tests.brokers import Mosquitto
from tests.fake_influx import FakeInflux
from tests.faults_support import (
    IngestProcess,
    StreamPublisher,
    count_points,
    json_reading,
    make_session,
    received_counter,
    saved_database,
    sqlite_points,
    tally,
    tally_points,
    wait_until,
)
from tests.store.influx_backends import FAKE_BUCKET, fake_influx_store
from tests.test_ingest import running_ingest, store  # noqa: F401 (fixture)

STATIONS = ("qh-st-101203-1", "qh-st-101204-1", "qh-st-102200-1", "qh-st-001200-1", "qh-st-002200-1")


def stream(metric: str, per_device: int, step_ms: int = 10_000,
           devices: tuple[str, ...] = STATIONS) -> tuple[list[tuple[str, bytes]], dict[tuple[str, int], float]]:
    """Interleaved single readings of several devices, distinct ts per device, a value that names its
    (device, i) so a mix-up shows; the messages and what the store must end up holding."""
    start = now_ms() - per_device * step_ms - 3_600_000
    messages: list[tuple[str, bytes]] = []
    expected: dict[tuple[str, int], float] = {}
    for i in range(per_device):
        for d, device in enumerate(devices):
            ts = start + i * step_ms
            value = round((i * 7 + d * 13) % 500 / 10, 1)  # in range of every metric used here
            messages.append((f"nongyun/v1/{device}/telemetry", json_reading(ts, metric, value)))
            expected[(device, ts)] = value
    return messages, expected


@pytest.fixture
def publisher_for(own_mosquitto: Mosquitto) -> Iterator[StreamPublisher]:
    pub = StreamPublisher(own_mosquitto)
    yield pub
    pub.close()


def cid() -> str:
    return f"faults-{uuid.uuid4().hex[:10]}"


# -- the ingest process killed -------------------------------------------------------------------------


def test_20000_readings_survive_two_sigkills_of_the_ingest_process(
        own_mosquitto: Mosquitto, tmp_path: Path, publisher_for: StreamPublisher) -> None:
    metric, total = "soil_moisture", 20_000
    messages, expected = stream(metric, total // len(STATIONS))
    data = tmp_path / "data"
    db = data / "nongyun.sqlite3"
    client_id = cid()
    make_session(own_mosquitto, client_id)
    ingest = IngestProcess(own_mosquitto, data, client_id, tmp_path / "logs").start()
    try:
        publisher_for.publish_all(messages)
        kills: list[int] = []
        for threshold in (4_000, 11_000):  # kill while messages flow in and are being committed
            wait_until(lambda t=threshold: count_points(db, metric) >= t, 90,
                       f"{threshold} stored by ingest run {ingest.runs}\n{ingest.output()}")
            assert ingest.alive(), ingest.output()
            ingest.kill()
            kills.append(count_points(db, metric))
            ingest.start()  # same client id: the broker resumes the session and redelivers
        assert all(k < total for k in kills), f"the kills came after everything was stored: {kills}"
        assert publisher_for.wait_acknowledged(90) == total, "the broker did not acknowledge every message"
        wait_until(lambda: count_points(db, metric) >= total, 120, f"all stored\n{ingest.output()}")
        assert ingest.terminate() == 0, ingest.output()
    finally:
        if ingest.alive():
            ingest.kill()
    figures = tally(db, metric, expected)
    received = received_counter(db)
    print(f"\n{figures.line('SIGKILL ×2')}; killed at {kills} stored; messages committed "
          f"{received} (redelivered {received - total})")
    assert (figures.stored, figures.lost, figures.duplicates, figures.wrong_value, figures.extra) == (
        total, 0, 0, 0, 0)
    assert publisher_for.refused == []
    assert received >= total  # every message was committed at least once; redeliveries are absorbed


# -- the broker restarted -------------------------------------------------------------------------------


def test_a_broker_restart_mid_stream_loses_nothing_and_ingest_reconnects_by_itself(
        ctx: Context, own_mosquitto: Mosquitto, store: Any, publisher_for: StreamPublisher) -> None:
    metric, total = "air_temp", 6_000
    messages, expected = stream(metric, total // len(STATIONS))
    with running_ingest(ctx, own_mosquitto, store, cid()) as ingest:
        publisher_for.publish_all(messages, per_second=1500)
        wait_until(lambda: count_points(store.path, metric) >= 1500, 30, "the stream under way")
        own_mosquitto.stop()  # SIGTERM: Mosquitto saves its sessions and queues
        saved_database(own_mosquitto)
        own_mosquitto.start()
        restarted_at = count_points(store.path, metric)
        assert publisher_for.wait_acknowledged(60) == total
        try:
            wait_until(lambda: count_points(store.path, metric) >= total, 60, "everything stored after the restart")
        except AssertionError as exc:
            raise AssertionError(f"{exc}: {count_points(store.path, metric)} of {total} stored, restart at "
                                 f"{restarted_at}; {ingest.state()}; {ingest.pipeline.stats()}") from None
        wait_until(lambda: ingest.pipeline.stats().pending == 0, 10, "the pipeline settled")
        state = ingest.state()
        assert ingest.connected and state["connects"] >= 2, state
    figures = tally(store.path, metric, expected)
    print(f"\n{figures.line('broker restart')}; restarted at {restarted_at} stored; "
          f"ingest connects {state['connects']}, acks {state['acks_sent']}, stale acks {state['stale_acks']}")
    assert restarted_at < total, "the restart came after the stream"
    assert (figures.stored, figures.lost, figures.duplicates, figures.wrong_value, figures.extra) == (
        total, 0, 0, 0, 0)


# -- the store unavailable ------------------------------------------------------------------------------


class SqliteOutage:
    """Another connection holds SQLite's write lock (root ignores chmod; a lock stops root too): every
    write of the store waits out its busy timeout, then fails as ``StoreUnavailable``."""

    error = "locked"

    def __init__(self, tmp_path: Path) -> None:
        self.store = SqliteStore(tmp_path / "store" / "nongyun.sqlite3")
        self._lock: sqlite3.Connection | None = None

    def begin(self) -> None:
        self._lock = sqlite3.connect(self.store.path, isolation_level=None, timeout=10)
        self._lock.execute("BEGIN EXCLUSIVE")

    def end(self) -> None:
        if self._lock is not None:
            self._lock.execute("ROLLBACK")
            self._lock.close()
            self._lock = None

    def points(self, metric: str) -> list[tuple[str, int, float]]:
        return sqlite_points(self.store.path, metric)

    def close(self) -> None:
        self.end()
        self.store.close()


class InfluxOutage:
    """The protocol-faithful fake InfluxDB answers every write with its real 503 body (Retry-After 1)."""

    error = "503"

    def __init__(self, tmp_path: Path) -> None:
        self.fake = FakeInflux().start()
        self.store = fake_influx_store(self.fake)
        self.store.counters()  # bootstrap (the bucket) before the outage, as a running deployment has

    def begin(self) -> None:
        self.fake.fail_writes(503, times=1_000_000, retry_after="1")

    def end(self) -> None:
        with self.fake._lock:  # the fake's own lock: its handler must not see a half-cleared list
            self.fake.faults.clear()

    def points(self, metric: str) -> list[tuple[str, int, float]]:
        return [(r.tags["device"], r.time // 1_000_000, float(r.value))
                for r in self.fake.points(FAKE_BUCKET, "telemetry") if r.field == metric]

    def close(self) -> None:
        self.end()
        self.store.close()
        self.fake.stop()


OUTAGES: dict[str, type[SqliteOutage] | type[InfluxOutage]] = {"sqlite": SqliteOutage, "influxdb": InfluxOutage}


@pytest.mark.parametrize(("backend", "outage_s"), [
    ("sqlite", 8), ("influxdb", 8),
    pytest.param("sqlite", 30, marks=pytest.mark.slow), pytest.param("influxdb", 30, marks=pytest.mark.slow),
])
def test_a_store_outage_acks_nothing_loses_nothing_and_drains_after(
        ctx: Context, own_mosquitto: Mosquitto, tmp_path: Path, publisher_for: StreamPublisher,
        backend: str, outage_s: int) -> None:
    metric = "soil_temp"
    before, during = stream(metric, 100, devices=STATIONS[:2]), stream(metric, 400, devices=STATIONS[2:])
    expected = before[1] | during[1]
    total = len(expected)
    outage = OUTAGES[backend](tmp_path)
    try:
        with running_ingest(ctx, own_mosquitto, outage.store, cid()) as ingest:  # type: ignore[arg-type]
            publisher_for.publish_all(before[0])
            wait_until(lambda: len(outage.points(metric)) == len(before[1])
                       and ingest.pipeline.stats().pending == 0, 30, "the first part stored")
            outage.begin()
            acks = ingest.state()["acks_sent"]
            accepted = ingest.pipeline.stats().accepted
            began = time.monotonic()
            publisher_for.publish_all(during[0], per_second=len(during[0]) / (outage_s * 0.7))
            states: set[str] = set()
            while time.monotonic() - began < outage_s:
                stats = ingest.pipeline.stats()
                states.add(stats.state)
                assert ingest.state()["acks_sent"] == acks, (
                    f"acknowledged while the store was down: {acks} → {ingest.state()}, {stats}")
                assert stats.accepted == accepted
                time.sleep(0.1)
            stats = ingest.pipeline.stats()
            assert stats.state == "store_unavailable", stats
            assert outage.error in stats.store_error, stats
            assert stats.pending > 0 and stats.lag_ms >= (outage_s - 1) * 1000, stats
            assert len(outage.points(metric)) == len(before[1])
            assert publisher_for.wait_acknowledged(10) == total  # the broker holds what ingest does not
            outage.end()
            ended = time.monotonic()
            wait_until(lambda: len(outage.points(metric)) >= total, 60, "the backlog drained")
            drained_s = time.monotonic() - ended
            wait_until(lambda: ingest.pipeline.stats().pending == 0, 10, "the pipeline settled")
            after = ingest.pipeline.stats()
            assert (after.state, after.lag_ms, after.store_error) == ("running", 0, "")
            assert ingest.state()["acks_sent"] >= acks + len(during[0])
        figures = tally_points(outage.points(metric), expected)
    finally:
        outage.close()
    print(f"\n{figures.line(f'{backend} unavailable {outage_s} s')}; pending at the end of the outage "
          f"{stats.pending}, lag {stats.lag_ms} ms, states seen {sorted(states)}, drained in {drained_s:.1f} s")
    assert (figures.stored, figures.lost, figures.duplicates, figures.wrong_value, figures.extra) == (
        total, 0, 0, 0, 0)


# -- a device offline for an hour -----------------------------------------------------------------------


class Observer:
    """A second subscriber with a persistent session: sees the device's messages in the order the
    broker forwards them, backlog arrays and all."""

    def __init__(self, broker: Mosquitto, device: str) -> None:
        self.messages: list[bytes] = []
        self._lock = threading.Lock()
        granted = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=cid(), clean_session=False)
        self.client.reconnect_delay_set(1, 2)
        self.client.on_subscribe = lambda *args: granted.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()
        self.client.subscribe(f"nongyun/v1/{device}/telemetry", qos=1)
        assert granted.wait(10)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append(bytes(message.payload))

    def timestamps(self) -> list[int]:
        with self._lock:
            docs = [orjson.loads(p) for p in self.messages]
        out: list[int] = []
        for doc in docs:
            out.extend(int(r["ts"]) for r in (doc if isinstance(doc, list) else [doc]))
        return out

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_a_device_offline_for_an_hour_delivers_its_backlog_complete_and_in_order(
        ctx: Context, own_mosquitto: Mosquitto, store: Any, tmp_path: Path) -> None:
    device_mod = pytest.importorskip("sensors.device", reason="sensors/device.py (the device client) is not there")
    device_id, metric, step_ms = STATIONS[0], "soil_moisture", 5_000
    hour = 3_600_000 // step_ms  # 720 readings: one every 5 s of simulated time
    t0 = now_ms() - 2 * 3_600_000
    expected = {(device_id, t0 + i * step_ms): round(20 + (i % 300) / 10, 1) for i in range(hour + 1)}
    ts_list = sorted(ts for _, ts in expected)
    folder = tmp_path / "device"
    observer = Observer(own_mosquitto, device_id)
    try:
        with running_ingest(ctx, own_mosquitto, store, cid()) as ingest:
            dev = device_mod.DeviceClient(device_id, own_mosquitto.url, folder).start()
            try:
                dev.publish_telemetry(ts_list[0], {metric: expected[(device_id, ts_list[0])]})
                assert dev.wait_sent(10), "the live reading was not acknowledged"
                own_mosquitto.stop()
                saved_database(own_mosquitto)
                half = len(ts_list) // 2
                for ts in ts_list[1:half]:
                    dev.publish_telemetry(ts, {metric: expected[(device_id, ts)]})
                dev.close(timeout=0.5)  # the device restarts mid-outage: the outbox is on disk
                dev = device_mod.DeviceClient(device_id, own_mosquitto.url, folder).start()
                for ts in ts_list[half:]:
                    dev.publish_telemetry(ts, {metric: expected[(device_id, ts)]})
                buffered = dev.pending()
                assert buffered == hour, "the outbox does not hold the hour"
                own_mosquitto.start()
                assert dev.wait_sent(60), f"{dev.pending()} readings still in the outbox"
            finally:
                dev.close(timeout=2)
            wait_until(lambda: count_points(store.path, metric) >= len(expected), 60, "the backlog stored")
            wait_until(lambda: len(observer.timestamps()) >= len(expected), 30, "the observer saw the backlog")
            reconnects = ingest.state()["connects"]
        seen = observer.timestamps()
        messages = len(observer.messages)
    finally:
        observer.close()
    figures = tally(store.path, metric, expected)
    print(f"\n{figures.line('device offline 1 h')}; buffered on disk {buffered}, arrived as {messages} "
          f"messages, in order {seen == ts_list}, ingest connects {reconnects}")
    assert seen == ts_list, "the backlog arrived out of order, incomplete or doubled"
    assert messages < len(ts_list) // 10, "the backlog was not batched into arrays"
    assert (figures.stored, figures.lost, figures.duplicates, figures.wrong_value, figures.extra) == (
        len(expected), 0, 0, 0, 0)
