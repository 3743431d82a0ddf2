"""The device client through a real Mosquitto: retained status, QoS 1 telemetry, nothing lost in an outage."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from sensors.device import DeviceClient
from tests.brokers import Mosquitto

DEVICE = "qh-st-101203-1"
T0 = 1_780_000_000_000


def wait_for(cond: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


class Subscriber:
    """Records (topic, payload, retained) of nongyun/v1/{DEVICE}/#; a fixed id keeps its session."""

    def __init__(self, port: int, client_id: str = "test-sub", clean: bool = True) -> None:
        self.got: list[tuple[str, bytes, bool]] = []
        self.subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean)
        self.client.reconnect_delay_set(1, 2)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *a: self.subscribed.set()
        self.client.on_message = lambda c, u, m: self.got.append((m.topic, m.payload, bool(m.retain)))
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self.subscribed.wait(10)

    def _on_connect(self, client: mqtt.Client, *args: Any) -> None:
        client.subscribe(f"nongyun/v1/{DEVICE}/#", qos=1)

    def telemetry(self) -> list[dict[str, Any]]:
        """Every telemetry record received, backlog arrays flattened, in arrival order."""
        out: list[dict[str, Any]] = []
        for t, payload, _ in self.got:
            if t.endswith("/telemetry"):
                doc = orjson.loads(payload)
                out.extend(doc if isinstance(doc, list) else [doc])
        return out

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_publishes_status_and_telemetry(own_mosquitto: Mosquitto, tmp_path: Path) -> None:
    sub = Subscriber(own_mosquitto.port)
    device = DeviceClient(DEVICE, own_mosquitto.url, tmp_path).start()
    try:
        device.publish_telemetry(T0, {"soil_moisture": 23.4, "air_temp": 8.3})
        assert device.wait_sent(10)
        wait_for(lambda: len(sub.telemetry()) == 1)
        assert sub.telemetry() == [{"ts": T0, "readings": {"soil_moisture": 23.4, "air_temp": 8.3}}]
        assert (f"nongyun/v1/{DEVICE}/status", b"online", False) in sub.got
        late = Subscriber(own_mosquitto.port, "late-sub")  # a newcomer sees the retained status
        wait_for(lambda: (f"nongyun/v1/{DEVICE}/status", b"online", True) in late.got)
        late.close()
    finally:
        device.close()
    wait_for(lambda: (f"nongyun/v1/{DEVICE}/status", b"offline", False) in sub.got)
    sub.close()


def test_yield_records_keep_their_fields(own_mosquitto: Mosquitto, tmp_path: Path) -> None:
    sub = Subscriber(own_mosquitto.port, "yield-sub")
    device = DeviceClient(DEVICE, own_mosquitto.url, tmp_path).start()
    record = {"ts": T0, "crop": "corn", "area_mu": 12.5, "yield_jin": 15000, "plot": "p1", "moisture_pct": 28.5}
    try:
        device.publish_yield(record)
        wait_for(lambda: any(t.endswith("/yield") for t, _, _ in sub.got))
    finally:
        device.close()
        sub.close()
    assert [orjson.loads(p) for t, p, _ in sub.got if t.endswith("/yield")] == [record]


def test_buffers_through_an_outage_and_delivers_in_order(own_mosquitto: Mosquitto, tmp_path: Path) -> None:
    sub = Subscriber(own_mosquitto.port, "outage-sub", clean=False)  # its session outlives the restart
    device = DeviceClient(DEVICE, own_mosquitto.url, tmp_path).start()
    try:
        for i in range(5):
            device.publish_telemetry(T0 + i, {"air_temp": float(i)})
        assert device.wait_sent(10)
        own_mosquitto.stop()
        wait_for(lambda: not device.connected)
        for i in range(5, 305):
            device.publish_telemetry(T0 + i, {"air_temp": float(i)})
        assert device.pending() == 300  # held on disk, not handed to a dead connection
        own_mosquitto.start()
        assert device.wait_sent(30)
        wait_for(lambda: len(sub.telemetry()) >= 305, timeout=30)
    finally:
        device.close()
        sub.close()
    # QoS 1 is at least once: a broker restart may hand the subscriber again what it delivered just
    # before (its persistence saves every second). Every record arrives, first arrivals in order.
    stamps = [r["ts"] for r in sub.telemetry()]
    first_arrivals = list(dict.fromkeys(stamps))
    assert first_arrivals == [T0 + i for i in range(305)]
    arrays = [p for t, p, _ in sub.got if t.endswith("/telemetry") and p.startswith(b"[")]
    assert arrays and all(len(p) <= 64 * 1024 for p in arrays)


def test_the_outbox_survives_a_restart_of_the_device(own_mosquitto: Mosquitto, tmp_path: Path) -> None:
    own_mosquitto.stop()
    first = DeviceClient(DEVICE, own_mosquitto.url, tmp_path).start()
    for i in range(50):
        first.publish_telemetry(T0 + i, {"air_temp": float(i)})
    first.close(timeout=0.5)  # power cut before the broker came back

    own_mosquitto.start()
    sub = Subscriber(own_mosquitto.port, "restart-sub")
    second = DeviceClient(DEVICE, own_mosquitto.url, tmp_path).start()
    try:
        assert second.wait_sent(20)
        wait_for(lambda: len(sub.telemetry()) >= 50)
    finally:
        second.close()
        sub.close()
    assert [r["ts"] for r in sub.telemetry()] == [T0 + i for i in range(50)]


@pytest.mark.parametrize("count", [2_000])
def test_a_large_backlog_leaves_in_64_kib_arrays(own_mosquitto: Mosquitto, tmp_path: Path, count: int) -> None:
    own_mosquitto.stop()
    device = DeviceClient(DEVICE, own_mosquitto.url, tmp_path).start()
    readings = {m: 12.345 for m in ("soil_moisture", "soil_temp", "air_temp", "air_humidity", "rainfall",
                                    "light", "wind_speed", "battery")}
    for i in range(count):
        device.publish_telemetry(T0 + i * 600_000, readings)
    own_mosquitto.start()
    sub = Subscriber(own_mosquitto.port, "big-sub")
    try:
        assert device.wait_sent(30)
        wait_for(lambda: len(sub.telemetry()) >= count)
    finally:
        device.close()
        sub.close()
    sizes = [len(p) for t, p, _ in sub.got if t.endswith("/telemetry")]
    assert max(sizes) <= 64 * 1024 and len(sizes) < count / 100
