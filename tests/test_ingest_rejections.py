"""Every rejection reason, sent through the real broker, is recorded with its reason while ingestion runs on."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from service.context import Context
from service.records import REASONS
from service.store.sqlite import SqliteStore
from service.times import now_ms
from tests.brokers import Mosquitto
from tests.test_ingest import (
    ALL_VILLAGES,
    SCALE,
    STATION,
    Publisher,
    publisher,  # noqa: F401 - fixture
    reading,
    running_ingest,
    settled,
    store,  # noqa: F401 - fixture
    wait_for,
)

TELEMETRY = f"nongyun/v1/{STATION}/telemetry"
HOUR = 3_600_000


@pytest.fixture(scope="module")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    """This module's own broker: the counts below are exact, and the retained statuses other modules
    leave on the session's broker (the simulator's device clients) would reach every ingest here."""
    broker = Mosquitto(tmp_path_factory.mktemp("mosquitto-rejections")).start()
    yield broker
    broker.stop()

# reason → (topic, payload) built from "now"; store_rejected is the store's to raise (test_ingest_props).
CASES: dict[str, Callable[[int], tuple[str, bytes | dict[str, object] | list[object]]]] = {
    "bad_topic": lambda now: ("nongyun/v1/not.a.device/telemetry", reading(now)),
    "payload_too_large": lambda now: (TELEMETRY, b"[" + b" " * (64 * 1024) + b"]"),
    "bad_json": lambda now: (TELEMETRY, b'{"ts": 1, "readings": {'),
    "bad_record": lambda now: (TELEMETRY, {"ts": now, "values": {"air_temp": 3}}),
    "bad_timestamp": lambda now: (TELEMETRY, reading("2026-05-01T08:00:00")),  # type: ignore[arg-type]
    "unknown_device": lambda now: ("nongyun/v1/qh-st-999999-9/telemetry", reading(now)),
    "device_mismatch": lambda now: (TELEMETRY, {**reading(now), "device": "qh-st-101203-2"}),
    "wrong_kind": lambda now: (f"nongyun/v1/{SCALE}/telemetry", reading(now)),
    "unknown_metric": lambda now: (TELEMETRY, reading(now, leaf_wetness=3.0)),
    "unknown_crop": lambda now: (f"nongyun/v1/{SCALE}/yield",
                                 {"ts": now, "crop": "durian", "area_mu": 10, "yield_jin": 9000}),
    "implausible_yield": lambda now: (f"nongyun/v1/{SCALE}/yield",  # issue 18: 900,000 斤 on 1 亩 of corn
                                      {"ts": now, "crop": "corn", "area_mu": 1, "yield_jin": 900_000}),
    "not_finite": lambda now: (TELEMETRY, {"ts": now, "readings": {"air_temp": "warm"}}),
    "out_of_range": lambda now: (TELEMETRY, reading(now, soil_moisture=100.5)),
    "time_in_future": lambda now: (TELEMETRY, reading(now + HOUR)),
    "time_too_old": lambda now: (TELEMETRY, reading(now - 366 * 24 * HOUR)),
}


LAND_REASONS = ("unknown_plot", "plot_mismatch")  # need plots: tests/test_attribution.py


def test_every_reason_but_the_stores_own_has_a_case() -> None:
    assert set(CASES) == set(REASONS) - {"store_rejected", *LAND_REASONS}


@pytest.mark.parametrize("reason", sorted(CASES))
def test_rejected_input_is_recorded_with_its_reason_and_ingestion_goes_on(
        reason: str, ctx: Context, mosquitto: Mosquitto, store: SqliteStore,  # noqa: F811
        publisher: Publisher) -> None:  # noqa: F811
    now = now_ms()
    topic, payload = CASES[reason](now)
    good_ts = now - 10_000
    with running_ingest(ctx, mosquitto, store) as ingest:
        publisher.send(topic, payload)
        publisher.send(TELEMETRY, reading(good_ts, soil_moisture=42.0))
        publisher.flush()
        wait_for(settled(ingest, 2), what="both messages committed")
        assert ingest.state()["acks_sent"] == 2  # the rejected one is acknowledged too: it is recorded
        assert ingest.pipeline.stats().rejected == {reason: 1}
    [rejection] = store.rejections()
    assert rejection.reason == reason
    assert rejection.topic == topic
    assert rejection.detail
    assert rejection.payload  # the operator sees what came
    assert store.rejections(reason=reason) == [rejection]
    counters = store.counters()
    assert counters.rejected == {reason: 1}
    assert (counters.received, counters.accepted) == (2, 1)
    assert store.latest(ALL_VILLAGES, 0)[STATION].values["soil_moisture"] == (good_ts, 42.0)


def test_a_burst_of_garbage_does_not_stop_ingestion(ctx: Context, mosquitto: Mosquitto,
                                                    store: SqliteStore, publisher: Publisher) -> None:  # noqa: F811
    now = now_ms()
    garbage = [b"", b"\x00\xff\xfe", b"null", b"[]", b"[1,2,3]", b'"online"', b"{}", b"1e400",
               b'{"ts": true, "readings": {"air_temp": 1}}', b'{"ts": 1e30, "readings": {"air_temp": 1}}']
    with running_ingest(ctx, mosquitto, store) as ingest:
        for body in garbage * 20:
            publisher.send(TELEMETRY, body)
        publisher.send(TELEMETRY, reading(now - 1000, air_temp=-3.5))
        publisher.flush()
        wait_for(settled(ingest, len(garbage) * 20 + 1))
        stats = ingest.pipeline.stats()
    assert stats.state == "running"
    rejected_records = (len(garbage) + 2) * 20  # [1,2,3] is three rejected records
    assert sum(stats.rejected.values()) == rejected_records
    assert store.latest(ALL_VILLAGES, 0)[STATION].values["air_temp"] == (now - 1000, -3.5)
    counters = store.counters()
    assert sum(counters.rejected.values()) == rejected_records
    assert (counters.received, counters.accepted) == (len(garbage) * 20 + 1, 1)


OTHER = "qh-st-101203-2"


def test_a_flood_from_one_device_leaves_anothers_samples_and_counts_every_rejection(
        ctx: Context, mosquitto: Mosquitto, store: SqliteStore, publisher: Publisher) -> None:  # noqa: F811
    """10,000 bad messages from one device: all counted, a bounded few stored, and the other
    device's samples (sent before the flood) are still there, byte for byte."""
    from service.store import sqlite_rejections

    now = now_ms()
    flood = 10_000
    with running_ingest(ctx, mosquitto, store) as ingest:
        publisher.send(f"nongyun/v1/{OTHER}/telemetry", reading(now, soil_moisture=100.5))
        publisher.send(f"nongyun/v1/{OTHER}/telemetry", b"{not json")
        publisher.flush()
        wait_for(settled(ingest, 2), what="the other device's rejections committed")
        before = store.rejections(device=OTHER)
        assert {r.reason for r in before} == {"out_of_range", "bad_json"}
        for i in range(flood):
            publisher.send(TELEMETRY, b'{"ts": 1, "readings": {' if i % 2 else reading(now, air_temp=99.0))
        publisher.flush()
        wait_for(settled(ingest, flood + 2), timeout=120, what="the flood committed")
    assert store.rejections(device=OTHER) == before
    counts = store.rejection_counts()
    assert counts[(STATION, "bad_json")] == flood // 2 and counts[(STATION, "out_of_range")] == flood // 2
    assert store.counters().rejected == {"bad_json": flood // 2 + 1, "out_of_range": flood // 2 + 1}
    kept = store.rejections(limit=100_000, device=STATION)
    assert len(kept) <= sqlite_rejections.PER_DEVICE
    print(f"flood of {flood}: {len(kept)} samples of {STATION} kept, other device's {len(before)} intact")


def test_one_message_with_many_bad_records_stores_a_few_samples(
        ctx: Context, mosquitto: Mosquitto, store: SqliteStore, publisher: Publisher) -> None:  # noqa: F811
    from service.store import sqlite_rejections

    now = now_ms()
    records = [reading(now - i, air_temp=99.0) for i in range(800)]
    with running_ingest(ctx, mosquitto, store) as ingest:
        publisher.send(TELEMETRY, records)  # type: ignore[arg-type]
        publisher.flush()
        wait_for(settled(ingest, 1), what="the message committed")
    assert len(store.rejections(limit=10_000)) == sqlite_rejections.PER_BATCH
    assert store.rejection_counts() == {(STATION, "out_of_range"): 800}
    assert store.counters().rejected == {"out_of_range": 800}
