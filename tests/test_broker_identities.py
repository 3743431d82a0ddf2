"""The broker files of ``nongyun broker-config`` against a real Mosquitto 2.0 with its dynamic-security
plugin and a real ingest into a real SqliteStore: no device can take the ingest's or another device's
client id, no device can subscribe (shared subscriptions included), a 1 MB message never reaches
ingest, and nothing a legitimate device sends meanwhile is lost."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from click.testing import CliRunner
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from service.cli import main
from service.context import Context
from service.ingest import MqttIngest, connect
from service.payloads import PayloadDecoder
from service.store.sqlite import SqliteStore
from service.times import now_ms
from tests.brokers import Mosquitto, with_broker_config
from tests.conftest import CONFIG
from tests.test_ingest import count_series, reading, wait_for

A, B = "qh-st-101200-1", "qh-st-102200-1"
INGEST = "nongyun-ingest"
MESSAGES = 20
FIGURES: dict[str, tuple[int, int]] = {}  # scenario → (sent, stored), printed with -s


@dataclass
class Conn:
    client: mqtt.Client
    connack: list[str] = field(default_factory=list)
    subacks: list[Any] = field(default_factory=list)
    messages: list[tuple[str, bytes]] = field(default_factory=list)
    acked: threading.Event = field(default_factory=threading.Event)
    drops: int = 0


def connect_as(port: int, user: str, password: str, cid: str, *, v5: bool = False,
               will: bool = False) -> Conn:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=cid,
                    protocol=MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311)
    conn = Conn(c)
    c.username_pw_set(user, password)
    if will:
        c.will_set(f"nongyun/v1/{user}/status", "offline", qos=1, retain=True)
    c.on_connect = lambda cl, u, f, rc, p: conn.connack.append(str(rc))
    c.on_message = lambda cl, u, m: conn.messages.append((m.topic, m.payload))

    def on_subscribe(cl: mqtt.Client, u: Any, mid: int, codes: Any, p: Any) -> None:
        conn.subacks.extend(codes)
        conn.acked.set()

    def on_disconnect(cl: mqtt.Client, u: Any, f: Any, rc: Any, p: Any) -> None:
        conn.drops += 1

    c.on_subscribe = on_subscribe
    c.on_disconnect = on_disconnect
    c.reconnect_delay_set(60, 120)  # a refused client must not come back during the test
    c.connect("127.0.0.1", port)
    c.loop_start()
    wait_for(lambda: bool(conn.connack), 10, f"CONNACK for {cid}")
    return conn


def close(conn: Conn) -> None:
    conn.client.disconnect()
    conn.client.loop_stop()


@pytest.fixture
def secured(ctx: Context, tmp_path: Path) -> Iterator[tuple[Mosquitto, dict[str, str]]]:
    auth = tmp_path / "auth"
    env = {"NONGYUN_CONFIG": str(CONFIG), "NONGYUN_DATA_DIR": str(ctx.settings.data_dir),
           "NONGYUN_MQTT_SHARED_GROUP": "nongyun"}
    result = CliRunner().invoke(main, ["broker-config", "--out", str(auth)], env=env)
    assert result.exit_code == 0, result.output
    creds = dict(line.split("\t") for line in result.stdout.splitlines() if "\t" in line)
    broker = with_broker_config(tmp_path / "broker", auth).start()
    try:
        yield broker, creds
    finally:
        broker.stop()


@pytest.fixture
def ingest(ctx: Context, secured: tuple[Mosquitto, dict[str, str]], tmp_path: Path) -> Iterator[MqttIngest]:
    broker, creds = secured
    store = SqliteStore(tmp_path / "store" / "nongyun.sqlite3")
    settings = ctx.settings.with_overrides(
        mqtt_url=f"mqtt://{INGEST}:{creds[INGEST]}@127.0.0.1:{broker.port}", mqtt_client_id=INGEST,
        mqtt_shared_group="nongyun")
    worker = connect(settings, PayloadDecoder(ctx.registry, ctx.catalogue), store)
    worker.start()
    try:
        assert worker.wait_subscribed(10), worker.state()
        yield worker
    finally:
        worker.stop()
        store.close()


def stored(worker: MqttIngest, device: str) -> int:
    store = worker.pipeline.store
    assert isinstance(store, SqliteStore)
    return count_series(store, "soil_moisture", 0, now_ms() + 60_000, device)


def send_from(device: Conn, device_id: str, n: int, start: int) -> None:
    for i in range(n):
        info = device.client.publish(f"nongyun/v1/{device_id}/telemetry",
                                     __import__("orjson").dumps(reading(start + i * 1000)), qos=1)
        info.wait_for_publish(5)
        assert info.is_published()


def test_no_device_can_take_the_ingests_or_another_devices_client_id(
        secured: tuple[Mosquitto, dict[str, str]], ingest: MqttIngest) -> None:
    broker, creds = secured
    a = connect_as(broker.port, A, creds[A], A, will=True)
    assert a.connack == ["Success"]
    a.client.publish(f"nongyun/v1/{A}/status", "online", qos=1, retain=True).wait_for_publish(5)
    start = now_ms() - 3_600_000
    send_from(a, A, MESSAGES // 2, start)
    # B's credential under the ingest's id and under A's, over 3.1.1 and 5, clean or not: refused
    for cid in (INGEST, A):
        for v5 in (False, True):
            thief = connect_as(broker.port, B, creds[B], cid, v5=v5)
            assert thief.connack == ["Not authorized"], (cid, v5, thief.connack)
            close(thief)
    send_from(a, A, MESSAGES - MESSAGES // 2, start + MESSAGES // 2 * 1000)
    wait_for(lambda: stored(ingest, A) >= MESSAGES, 15, "every message stored")
    assert stored(ingest, A) == MESSAGES
    FIGURES["client-id takeover"] = (MESSAGES, stored(ingest, A))
    state = ingest.state()
    assert state["connected"] and state["connects"] == 1  # never displaced
    # no false offline: A was never kicked, so its last will never fired
    assert a.client.is_connected() and a.drops == 0
    close(a)


def test_a_device_cannot_subscribe_not_even_into_the_shared_group(
        secured: tuple[Mosquitto, dict[str, str]], ingest: MqttIngest) -> None:
    broker, creds = secured
    spy = connect_as(broker.port, B, creds[B], B)
    spy.client.subscribe([("#", 1), ("$share/nongyun/nongyun/v1/+/telemetry", 1)])
    assert spy.acked.wait(5)
    assert [c.is_failure for c in spy.subacks] == [True, True], [str(c) for c in spy.subacks]
    spy5 = connect_as(broker.port, A, creds[A], A, v5=True)
    spy5.client.subscribe([("$share/nongyun/nongyun/v1/+/telemetry", 1)])
    assert spy5.acked.wait(5) and all(c.is_failure for c in spy5.subacks)
    send_from(spy5, A, MESSAGES, now_ms() - 3_600_000)
    wait_for(lambda: stored(ingest, A) >= MESSAGES, 15, "every message stored")
    time.sleep(0.3)
    assert stored(ingest, A) == MESSAGES and spy.messages == [] and spy5.messages == []
    FIGURES["subscribe #, $share"] = (MESSAGES, stored(ingest, A))
    close(spy)
    close(spy5)


def test_a_1_mb_publish_never_reaches_ingest(secured: tuple[Mosquitto, dict[str, str]], ingest: MqttIngest) -> None:
    broker, creds = secured
    a = connect_as(broker.port, A, creds[A], A)
    before = ingest.pipeline.stats().received
    info = a.client.publish(f"nongyun/v1/{A}/telemetry", b"[" + b" " * 1_000_000 + b"]", qos=1)
    # Mosquitto drops it: it acknowledges it or closes the connection (a 3.1.1 client has no reason code)
    wait_for(lambda: info.is_published() or a.drops > 0, 10, "the broker handled the 1 MB message")
    close(a)
    a = connect_as(broker.port, A, creds[A], A)
    send_from(a, A, 1, now_ms() - 60_000)  # a small one after it: once it is stored, the big one is past
    wait_for(lambda: stored(ingest, A) == 1, 15, "the small message stored")
    assert ingest.pipeline.stats().received == before + 1
    FIGURES["1 MB publish"] = (1, ingest.pipeline.stats().received - before - 1)
    close(a)


def test_ingest_health_degrades_on_a_lost_session_and_on_reconnect_churn(ctx: Context, tmp_path: Path) -> None:
    from service.ingest import IngestPipeline
    from service.queries.health import health_report

    broker = Mosquitto(tmp_path / "broker", persistence=False).start()  # a restart forgets every session
    store = SqliteStore(tmp_path / "store" / "nongyun.sqlite3")
    settings = ctx.settings.with_overrides(mqtt_url=broker.url, mqtt_client_id="ingest-health")
    holder: list[MqttIngest] = []
    pipeline = IngestPipeline(PayloadDecoder(ctx.registry, ctx.catalogue), store, worker="ingest-health",
                              ack=lambda tokens: holder[0].ack(tokens))
    worker = MqttIngest(settings, pipeline, reconnect_min_s=1, reconnect_max_s=1, churn_max=2)
    holder.append(worker)
    reachable = lambda: {"reachable": True}  # noqa: E731
    worker.start()
    try:
        assert worker.wait_subscribed(10)
        report = health_report(store, reachable, [worker], now_ms())
        assert report.ok and report.live is not None and report.live["degraded"] == []
        broker.restart()
        wait_for(lambda: worker.state()["connects"] == 2 and worker.wait_subscribed(0), 15, "reconnected")
        report = health_report(store, reachable, [worker], now_ms())
        assert not report.ok and report.live is not None
        assert any("session present: false" in r for r in report.live["degraded"]), report.live
        assert report.live["mqtt"]["sessions_lost"] == 1
        for n in (3, 4):
            broker.restart()
            wait_for(lambda n=n: worker.state()["connects"] == n and worker.wait_subscribed(0), 15, "reconnected")
        reasons = health_report(store, reachable, [worker], now_ms()).live["degraded"]  # type: ignore[index]
        assert any(r.startswith("3 reconnects in the last 10 minutes") for r in reasons), reasons
        # once the window has passed, churn and the lost session no longer degrade health
        assert worker.link_health(time.monotonic() + worker.churn_window_s + 1) == []
    finally:
        worker.stop()
        store.close()
        broker.stop()
