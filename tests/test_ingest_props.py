"""The pipeline's guarantees as properties, against a real SqliteStore with faults switched in.

Whatever mix of good records, garbage, transient store faults and records the store refuses:
every message is acknowledged exactly once, in order, and only after its records are committed
or recorded as rejections; nothing refused is stored and nothing else is lost.
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.context import Context
from service.errors import StoreRejected, StoreUnavailable
from service.ingest import IngestPipeline
from service.payloads import PayloadDecoder
from service.records import Batch
from service.store.sqlite import SqliteStore
from tests.test_ingest import ALL_VILLAGES, STATION, count_series, wait_for

BASE = 1_790_000_000_000  # the pipeline's clock in these tests: fixed, so time checks are deterministic
TOPIC = f"nongyun/v1/{STATION}/telemetry"
POISON = 13.0  # an air_temp the faulty store refuses, as InfluxDB refuses a field type conflict


class FaultyStore:
    """A real SqliteStore behind switchable faults: the pipeline's view of a misbehaving backend."""

    def __init__(self, inner: SqliteStore, outages: list[bool] | None = None) -> None:
        self.inner = inner
        self.outages = list(outages or [])  # one entry per write: True → StoreUnavailable
        self.down = False
        self.writes = 0
        self.name = "faulty"

    def write(self, batch: Batch) -> None:
        self.writes += 1
        if self.down or (self.outages and self.outages.pop(0)):
            raise StoreUnavailable("injected outage", retry_after_s=0.001)
        if any(r.values.get("air_temp") == POISON for r in batch.readings):
            raise StoreRejected("injected: field type conflict on air_temp")
        self.inner.write(batch)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.fixture
def decoder(ctx: Context) -> PayloadDecoder:
    return PayloadDecoder(ctx.registry, ctx.catalogue)


@pytest.fixture
def sqlite(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(tmp_path / "nongyun.sqlite3")
    yield s
    s.close()


def pipeline(decoder: PayloadDecoder, store: Any, acked: list[int], **kw: Any) -> IngestPipeline:
    # a batch most of whose records are POISON is held a moment, then its refusals are the data's
    options: dict[str, Any] = {"batch_size": 50, "flush_ms": 50, "queue_max": 1000, "backoff_first_s": 0.001,
                               "hold_refused_s": 0.05}
    return IngestPipeline(decoder, store, worker="w1", clock=lambda: BASE, ack=acked.extend, **(options | kw))


record = st.fixed_dictionaries({
    "ts": st.integers(0, 40).map(lambda k: BASE - k * 60_000),
    "readings": st.fixed_dictionaries({"air_temp": st.sampled_from([1.0, 2.5, POISON])}),
})
message = st.one_of(
    record.map(orjson.dumps),
    st.lists(record, min_size=1, max_size=8).map(orjson.dumps),
    st.binary(max_size=20),  # garbage: rejected by the decoder
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(messages=st.lists(message, max_size=25), outages=st.lists(st.booleans(), max_size=8),
       batch_size=st.integers(1, 40))
def test_every_message_is_acked_once_in_order_after_its_records_are_settled(
        decoder: PayloadDecoder, messages: list[bytes], outages: list[bool], batch_size: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        inner = SqliteStore(Path(tmp) / "s.sqlite3")
        acked: list[int] = []
        p = pipeline(decoder, FaultyStore(inner, outages), acked, batch_size=batch_size)
        p.start()
        for token, body in enumerate(messages):
            assert p.submit(TOPIC, body, token)
        assert p.block_till_done(30)
        p.stop()
        assert acked == list(range(len(messages)))

        decoded = [decoder.decode(TOPIC, body, BASE) for body in messages]
        good = {r.ts for d in decoded for r in d.readings if r.values["air_temp"] != POISON}
        poison = sum(1 for d in decoded for r in d.readings if r.values["air_temp"] == POISON)
        refused = sum(len(d.rejections) for d in decoded)
        assert count_series(inner, "air_temp", BASE - 41 * 60_000, BASE + 1, STATION) == len(good)
        counters = inner.counters()
        assert counters.received == len(messages)
        assert counters.rejected.get("store_rejected", 0) == poison
        assert sum(counters.rejected.values()) == poison + refused
        stats = p.stats()
        assert stats.rejected.get("store_rejected", 0) == poison
        assert (stats.pending, stats.lag_ms, stats.dropped) == (0, 0, 0)
        inner.close()


def test_a_refused_record_is_bisected_out_and_its_neighbours_are_stored(
        decoder: PayloadDecoder, sqlite: SqliteStore) -> None:
    acked: list[int] = []
    store = FaultyStore(sqlite)
    p = pipeline(decoder, store, acked, batch_size=1000)
    backlog = [{"ts": BASE - k * 60_000, "readings": {"air_temp": POISON if k == 37 else 4.0}} for k in range(64)]
    p.submit(TOPIC, orjson.dumps(backlog), 7)
    p.start()
    assert p.block_till_done(10)
    p.stop()
    assert acked == [7]
    assert count_series(sqlite, "air_temp", BASE - 64 * 60_000, BASE + 1, STATION) == 63
    [rejection] = sqlite.rejections()
    assert rejection.reason == "store_rejected"
    assert "field type conflict" in rejection.detail
    assert rejection.topic == TOPIC and rejection.device == STATION
    assert str(BASE - 37 * 60_000) in rejection.payload
    assert store.writes <= 1 + 2 * 6 + 1  # a bisection, not a record-by-record retry
    assert sqlite.counters().received == 1  # the message is counted once however it was split


def test_while_the_store_is_down_nothing_is_acked_submit_blocks_and_all_drains_after(
        decoder: PayloadDecoder, sqlite: SqliteStore) -> None:
    acked: list[int] = []
    store = FaultyStore(sqlite)
    store.down = True
    p = pipeline(decoder, store, acked, queue_max=3, batch_size=2, backoff_cap_s=0.05)
    p.start()
    bodies = [orjson.dumps({"ts": BASE - k * 60_000, "readings": {"air_temp": 3.0}}) for k in range(10)]
    producer = threading.Thread(target=lambda: [p.submit(TOPIC, b, i) for i, b in enumerate(bodies)])
    producer.start()
    wait_for(lambda: p.stats().queue_depth == 3 and p.stats().state == "store_unavailable")
    producer.join(0.3)
    assert producer.is_alive()  # back-pressure: the MQTT thread waits, so the broker keeps the rest
    assert not p.block_till_done(0.2)
    stats = p.stats()
    assert acked == []
    assert stats.pending == 6  # 2 in the held batch, 3 queued, 1 blocked in submit
    assert stats.store_error == "injected outage"
    store.down = False
    producer.join(10)
    assert p.block_till_done(10)
    assert acked == list(range(10))
    assert p.stats().state == "running"
    assert count_series(sqlite, "air_temp", BASE - 10 * 60_000, BASE + 1, STATION) == 10
    p.stop()


def test_stop_without_drain_acks_nothing_uncommitted(decoder: PayloadDecoder, sqlite: SqliteStore) -> None:
    acked: list[int] = []
    store = FaultyStore(sqlite)
    store.down = True
    p = pipeline(decoder, store, acked)
    p.start()
    for i in range(5):
        p.submit(TOPIC, orjson.dumps({"ts": BASE - i, "readings": {"air_temp": 3.0}}), i)
    wait_for(lambda: p.stats().state == "store_unavailable")
    assert p.stop(drain=False) is False
    assert acked == []
    assert not p.submit(TOPIC, b"{}", 99)  # a stopped pipeline refuses: the broker keeps the message
    assert sqlite.latest(ALL_VILLAGES, 0) == {}


def test_a_stopped_pipeline_drains_before_it_returns(decoder: PayloadDecoder, sqlite: SqliteStore) -> None:
    acked: list[int] = []
    p = pipeline(decoder, sqlite, acked, batch_size=3)
    for i in range(20):
        p.submit(TOPIC, orjson.dumps({"ts": BASE - i * 1000, "readings": {"air_temp": 3.0}}), i)
    p.start()
    assert p.stop(drain=True) is True
    assert acked == list(range(20))
    assert count_series(sqlite, "air_temp", BASE - 20_000, BASE + 1, STATION) == 20


def test_a_message_of_refused_records_is_held_then_recorded_as_rejections(
        decoder: PayloadDecoder, sqlite: SqliteStore) -> None:
    """Most of the batch refused: held (nothing acknowledged) for hold_refused_s, then the refusals are
    the data's, so one device's bad message cannot block every other device for ever."""
    acked: list[int] = []
    p = pipeline(decoder, FaultyStore(sqlite), acked, batch_size=1000, hold_refused_s=0.5)
    bad = [{"ts": BASE - k * 60_000, "readings": {"air_temp": POISON if k < 10 else 4.0}} for k in range(12)]
    p.submit(TOPIC, orjson.dumps(bad), 3)
    p.start()
    wait_for(lambda: p.stats().state == "store_error")
    assert acked == [] and sqlite.counters().rejected == {}
    assert p.block_till_done(10)
    p.stop()
    assert acked == [3]
    assert sqlite.counters().rejected == {"store_rejected": 10}
    assert count_series(sqlite, "air_temp", BASE - 12 * 60_000, BASE + 1, STATION) == 2
