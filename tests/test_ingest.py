"""MQTT ingest through a real Mosquitto into a real SqliteStore: stored, once, whole, and never acked early.

The helpers here (``Publisher``, ``running_ingest``, ``wait_for``) are shared with the other
``test_ingest_*`` modules.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import orjson
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from service.context import Context
from service.ingest import MqttIngest, connect
from service.payloads import PayloadDecoder
from service.records import Batch
from service.store.base import InRegion, ReadingsQuery, YieldsQuery
from service.store.sqlite import SqliteStore
from service.times import now_ms
from tests.brokers import Mosquitto

STATION = "qh-st-101203-1"
STATION_VILLAGE = "211204101203"
SCALE = "qh-gs-101"
SCALE_VILLAGE = "211204101200"
ALL_VILLAGES = InRegion("district", "211204")


def wait_for(cond: Callable[[], bool], timeout: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout} s")
        time.sleep(0.01)


class Publisher:
    """A device-side paho client: QoS 1, checks every return code, waits for the broker's PUBACKs."""

    def __init__(self, broker: Mosquitto) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"pub-{uuid.uuid4().hex[:8]}")
        self.client.max_inflight_messages_set(100)
        self.client.max_queued_messages_set(0)
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()
        self._infos: list[mqtt.MQTTMessageInfo] = []

    def send(self, topic: str, payload: bytes | str | dict[str, object] | list[object], qos: int = 1) -> None:
        body = payload if isinstance(payload, bytes | str) else orjson.dumps(payload)
        info = self.client.publish(topic, body, qos=qos)
        assert info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS, mqtt.error_string(info.rc)
        self._infos.append(info)

    def flush(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        for info in self._infos:
            info.wait_for_publish(max(0.1, deadline - time.monotonic()))
            assert info.is_published()
        self._infos.clear()

    def close(self) -> None:
        self.flush()
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def publisher(mosquitto: Mosquitto) -> Iterator[Publisher]:
    pub = Publisher(mosquitto)
    yield pub
    pub.close()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(tmp_path / "store" / "nongyun.sqlite3")
    yield s
    s.close()


def client_id() -> str:
    """Persistent sessions outlive a test on the shared broker: every test takes a fresh id."""
    return f"ingest-test-{uuid.uuid4().hex[:10]}"


def make_ingest(ctx: Context, broker: Mosquitto, store: SqliteStore, cid: str, **overrides: object) -> MqttIngest:
    settings = ctx.settings.with_overrides(**({"mqtt_url": broker.url, "mqtt_client_id": cid} | overrides))
    return connect(settings, PayloadDecoder(ctx.registry, ctx.catalogue), store)


@contextmanager
def running_ingest(ctx: Context, broker: Mosquitto, store: SqliteStore, cid: str | None = None,
                   **overrides: object) -> Iterator[MqttIngest]:
    ingest = make_ingest(ctx, broker, store, cid or client_id(), **overrides)
    ingest.start()
    try:
        assert ingest.wait_subscribed(10), "ingest did not subscribe"
        yield ingest
    finally:
        ingest.stop()


def reading(ts: int, **values: float) -> dict[str, object]:
    return {"ts": ts, "readings": values or {"soil_moisture": 23.4, "air_temp": 8.3}}


def count_series(store: SqliteStore, metric: str, start: int, end: int, device: str) -> int:
    q = ReadingsQuery(metric, start, end, 86_400_000 * 400, "count", ALL_VILLAGES, "device",
                      __import__("zoneinfo").ZoneInfo("Asia/Shanghai"))
    return int(sum(v for _, v in store.readings(q).get(device, [])))


def settled(ingest: MqttIngest, received: int) -> Callable[[], bool]:
    """The pipeline saw ``received`` messages and committed them all."""
    def check() -> bool:
        s = ingest.pipeline.stats()
        return s.received >= received and s.pending == 0
    return check


# -- the tests ---------------------------------------------------------------------------------------


def test_a_qos1_record_is_stored(ctx: Context, mosquitto: Mosquitto, store: SqliteStore,
                                 publisher: Publisher) -> None:
    ts = now_ms() - 60_000
    with running_ingest(ctx, mosquitto, store) as ingest:
        publisher.send(f"nongyun/v1/{STATION}/telemetry", reading(ts, soil_moisture=31.5, air_temp=12.25))
        wait_for(lambda: STATION in store.latest(ALL_VILLAGES, 0), what="the reading stored")
        latest = store.latest(ALL_VILLAGES, 0)[STATION]
        assert latest.values["soil_moisture"] == (ts, 31.5)
        assert latest.values["air_temp"] == (ts, 12.25)
        wait_for(settled(ingest, 1))
        assert ingest.state()["acks_sent"] == 1
        stats = ingest.pipeline.stats()
        assert (stats.received, stats.accepted, stats.rejected, stats.lag_ms) == (1, 1, {}, 0)
    counters = store.counters()
    assert (counters.received, counters.accepted) == (1, 1)


def test_a_message_delivered_twice_counts_once(ctx: Context, mosquitto: Mosquitto, store: SqliteStore,
                                               publisher: Publisher) -> None:
    ts = now_ms() - 120_000
    harvest = {"ts": ts, "crop": "corn", "area_mu": 12.5, "yield_jin": 15000, "plot": "p-7"}
    with running_ingest(ctx, mosquitto, store) as ingest:
        for _ in range(2):
            publisher.send(f"nongyun/v1/{STATION}/telemetry", reading(ts, soil_moisture=20.0))
            publisher.send(f"nongyun/v1/{SCALE}/yield", harvest)
        publisher.flush()
        wait_for(settled(ingest, 4), what="four messages committed")
    assert ingest.pipeline.stats().accepted == 4  # all four were taken ...
    assert count_series(store, "soil_moisture", ts - 1, ts + 1, STATION) == 1  # ... each point stored once
    year = YieldsQuery(ALL_VILLAGES, ts - 86_400_000, ts + 86_400_000, "crop",
                       __import__("zoneinfo").ZoneInfo("Asia/Shanghai"))
    totals = store.yields(year)
    assert [(t.key, t.records) for t in totals] == [("corn", 1)]
    assert totals[0].area_ha == pytest.approx(12.5 / 15)
    assert totals[0].yield_kg == pytest.approx(7500)


def test_a_backlog_array_of_500_is_stored_whole(ctx: Context, mosquitto: Mosquitto, store: SqliteStore,
                                                publisher: Publisher) -> None:
    start = now_ms() - 500 * 600_000
    backlog = [reading(start + i * 600_000, soil_moisture=20 + i % 10) for i in range(500)]
    with running_ingest(ctx, mosquitto, store) as ingest:
        publisher.send(f"nongyun/v1/{STATION}/telemetry", backlog)
        publisher.flush()
        wait_for(settled(ingest, 1))
    assert count_series(store, "soil_moisture", start, start + 500 * 600_000, STATION) == 500
    assert store.rejections() == []


def test_one_bad_record_in_an_array_rejects_only_that_record(ctx: Context, mosquitto: Mosquitto,
                                                             store: SqliteStore, publisher: Publisher) -> None:
    start = now_ms() - 20 * 600_000
    backlog = [reading(start + i * 600_000, soil_moisture=30.0) for i in range(20)]
    backlog[7] = reading(start + 7 * 600_000, soil_moisture=130.0)  # % vol over 100
    with running_ingest(ctx, mosquitto, store) as ingest:
        publisher.send(f"nongyun/v1/{STATION}/telemetry", backlog)
        publisher.flush()
        wait_for(settled(ingest, 1))
    assert count_series(store, "soil_moisture", start, start + 20 * 600_000, STATION) == 19
    [rejection] = store.rejections()
    assert (rejection.reason, rejection.device) == ("out_of_range", STATION)
    assert rejection.detail.startswith("record 7:")
    assert store.counters().rejected == {"out_of_range": 1}


def test_a_persistent_session_keeps_what_arrives_while_ingest_is_away(
        ctx: Context, mosquitto: Mosquitto, store: SqliteStore, publisher: Publisher) -> None:
    cid = client_id()
    with running_ingest(ctx, mosquitto, store, cid):
        pass  # the session and its subscriptions now exist on the broker
    start = now_ms() - 1000 * 60_000
    for i in range(1000):
        publisher.send(f"nongyun/v1/{STATION}/telemetry", reading(start + i * 60_000, air_temp=i % 50))
    publisher.flush()
    with running_ingest(ctx, mosquitto, store, cid) as ingest:
        wait_for(settled(ingest, 1000), what="the 1,000 queued messages committed")
        assert ingest.state()["acks_sent"] == 1000
    assert count_series(store, "air_temp", start, start + 1000 * 60_000, STATION) == 1000


def _locked(store_path: Path) -> sqlite3.Connection:
    """Another connection holding the write lock: the store's writes wait, then fail as transient."""
    other = sqlite3.connect(store_path, isolation_level=None, timeout=0)
    other.execute("BEGIN EXCLUSIVE")
    return other


def test_nothing_is_acked_while_the_store_is_locked_and_nothing_lost_after(
        ctx: Context, mosquitto: Mosquitto, store: SqliteStore, publisher: Publisher) -> None:
    start = now_ms() - 200 * 60_000
    with running_ingest(ctx, mosquitto, store) as ingest:
        lock = _locked(store.path)
        for i in range(200):
            publisher.send(f"nongyun/v1/{STATION}/telemetry", reading(start + i * 60_000, soil_temp=5.0))
        publisher.flush()
        wait_for(lambda: ingest.pipeline.stats().pending > 0, what="messages held")
        held_since = time.monotonic()
        while time.monotonic() - held_since < 1.0:  # the lock stays for a second: nothing may be acked
            assert ingest.state()["acks_sent"] == 0
            time.sleep(0.05)
        assert ingest.pipeline.stats().lag_ms >= 900
        lock.execute("ROLLBACK")
        lock.close()
        wait_for(settled(ingest, 200), what="the backlog drained")
        assert ingest.state()["acks_sent"] == 200
    assert count_series(store, "soil_temp", start, start + 200 * 60_000, STATION) == 200


@pytest.mark.slow
def test_a_store_outage_past_the_busy_timeout_loses_nothing_even_if_ingest_dies(
        ctx: Context, mosquitto: Mosquitto, store: SqliteStore, publisher: Publisher) -> None:
    """The store stays locked past SQLite's busy timeout (StoreUnavailable, backoff, health state);
    the worker is then stopped without draining; a new worker with the same id gets it all."""
    store.write(Batch())  # the writer schema exists before the lock is taken
    cid = client_id()
    start = now_ms() - 300 * 60_000
    ingest = make_ingest(ctx, mosquitto, store, cid)
    ingest.start()
    assert ingest.wait_subscribed(10)
    lock = _locked(store.path)
    try:
        for i in range(300):
            publisher.send(f"nongyun/v1/{STATION}/telemetry", reading(start + i * 60_000, rainfall=1.5))
        publisher.flush()
        wait_for(lambda: ingest.pipeline.stats().state == "store_unavailable", timeout=20,
                 what="the store reported unavailable")
        stats = ingest.pipeline.stats()
        assert "locked" in stats.store_error
        assert ingest.state()["acks_sent"] == 0
        stopper = threading.Thread(target=ingest.stop, kwargs={"drain": False})
        stopper.start()
        stopper.join(30)
        assert not stopper.is_alive()
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    assert ingest.state()["acks_sent"] == 0
    with running_ingest(ctx, mosquitto, store, cid) as again:
        wait_for(settled(again, 300), timeout=30, what="the redelivered backlog drained")
    assert count_series(store, "rainfall", start, start + 300 * 60_000, STATION) == 300


def test_shared_subscription_and_credentials_come_from_settings(ctx: Context, mosquitto: Mosquitto,
                                                                store: SqliteStore, publisher: Publisher) -> None:
    """``$share/{group}/`` works from an MQTT 3.1.1 client on Mosquitto; user:pass in the URL is used."""
    ts = now_ms() - 30_000
    url = f"mqtt://someone:secret@127.0.0.1:{mosquitto.port}"
    with running_ingest(ctx, mosquitto, store, mqtt_shared_group="nongyun", mqtt_url=url) as ingest:
        assert ingest.topics[0] == "$share/nongyun/nongyun/v1/+/telemetry"
        assert (ingest.address.username, ingest.address.password) == ("someone", "secret")
        assert ingest.connected
        publisher.send(f"nongyun/v1/{STATION}/telemetry", reading(ts))
        wait_for(lambda: STATION in store.latest(ALL_VILLAGES, 0), what="stored through $share")


def test_a_retained_status_does_not_make_a_device_look_seen_now(ctx: Context, own_mosquitto: Mosquitto,
                                                                store: SqliteStore) -> None:
    """On (re)subscribing the broker hands over stored retained statuses: their time is unknown."""
    pub = Publisher(own_mosquitto)
    info = pub.client.publish(f"nongyun/v1/{STATION}/status", b"online", qos=1, retain=True)
    info.wait_for_publish(10)
    pub.close()
    with running_ingest(ctx, own_mosquitto, store) as ingest:
        wait_for(settled(ingest, 1), what="the retained status committed")
    seen = store.latest(ALL_VILLAGES, 0)[STATION]
    assert seen.status is True and seen.status_ts == 0
    assert not seen.values and seen.last_seen in (None, 0)
