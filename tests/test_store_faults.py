"""Issue 11 B: a store fault is held, never turned into acknowledged rejections; a poison record is
isolated; a stuck writer cannot hang shutdown.

Real Mosquitto, the real ingest, the real SQLite file broken behind the store's back (a table
renamed, a trigger that refuses rows). The poison and stuck-writer stores are SqliteStore with one
fault injected in ``write`` — the only way to make a write raise an exception nothing maps.
Figures are printed (``-s`` shows them).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.context import Context
from service.errors import StoreFault, StoreRejected
from service.ingest.pipeline import POISON_AFTER, IngestPipeline
from service.payloads import PayloadDecoder, RetainedMemory
from service.records import Batch
from service.store.sqlite import SqliteStore
from tests.brokers import Mosquitto
from tests.faults_support import StreamPublisher, json_reading, sqlite_points, tally, wait_until
from tests.test_faults import STATIONS, cid, stream
from tests.test_ingest import running_ingest

METRIC = "soil_temp"


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(tmp_path / "store" / "nongyun.sqlite3")
    yield s
    s.close()


def behind_the_back(db: Path, *sql: str) -> None:
    """What an operator (or a bad deploy) does to the file while ingest runs."""
    conn = sqlite3.connect(db, isolation_level=None, timeout=30)
    try:
        for statement in sql:
            conn.execute(statement)
    finally:
        conn.close()


def rejections(db: Path) -> list[tuple[str, str, str]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return [(str(d), str(r), str(t)) for d, r, t in conn.execute("SELECT device, reason, detail FROM rejections")]
    finally:
        conn.close()


# -- a table gone during a run: held, then every message stored once ------------------------------------


@pytest.mark.parametrize(("fault", "repair", "error"), [
    (["ALTER TABLE readings RENAME TO readings_gone"], ["ALTER TABLE readings_gone RENAME TO readings"],
     "no such table: readings"),
    (["CREATE TRIGGER refuse BEFORE INSERT ON readings BEGIN SELECT RAISE(ABORT, 'refused by trigger'); END"],
     ["DROP TRIGGER refuse"], "refused by trigger"),
], ids=["table-renamed", "every-row-refused"])
def test_a_broken_store_holds_ingest_acks_nothing_and_after_the_repair_stores_every_message_once(
        ctx: Context, own_mosquitto: Mosquitto, sqlite_store: SqliteStore, fault: list[str], repair: list[str],
        error: str) -> None:
    before, during = stream(METRIC, 40, devices=STATIONS[:2]), stream(METRIC, 100, devices=STATIONS[2:])
    expected = before[1] | during[1]
    db = sqlite_store.path
    pub = StreamPublisher(own_mosquitto)
    try:
        with running_ingest(ctx, own_mosquitto, sqlite_store, cid()) as ingest:
            pub.publish_all(before[0])
            wait_until(lambda: len(sqlite_points(db, METRIC)) == len(before[1])
                       and ingest.pipeline.stats().pending == 0, 30, "the first part stored")
            behind_the_back(db, *fault)
            acks = ingest.state()["acks_sent"]
            accepted = ingest.pipeline.stats().accepted
            pub.publish_all(during[0])
            assert pub.wait_acknowledged(20) == len(expected)  # the broker holds what ingest does not
            wait_until(lambda: ingest.pipeline.stats().state == "store_error", 10, "the store_error state")
            time.sleep(2)  # several retries
            held = ingest.pipeline.stats()
            assert ingest.state()["acks_sent"] == acks, "acknowledged while the store was broken"
            assert held.accepted == accepted and held.rejected == {}, held
            assert error in held.store_error, held
            assert 0 < held.pending <= len(during[0]) and held.lag_ms >= 1500, held  # the rest waits in the broker
            assert rejections(db) == []
            behind_the_back(db, *repair)
            repaired = time.monotonic()
            wait_until(lambda: ingest.pipeline.stats().pending == 0, 30, "the backlog drained")
            drained_s = time.monotonic() - repaired
            after = ingest.pipeline.stats()
            assert (after.state, after.store_error, after.rejected) == ("running", "", {})
            # the PUBACKs leave on paho's network thread a moment after the pipeline settled
            wait_until(lambda: ingest.state()["acks_sent"] >= acks + len(during[0]), 15, "every held message acked")
        figures = tally(db, METRIC, expected)
    finally:
        pub.close()
    print(f"\n{figures.line(f'sqlite {fault[0].split()[0].lower()} fault')}; held {held.pending} messages, "
          f"lag {held.lag_ms} ms, acks during the fault 0, rejections 0, drained in {drained_s:.2f} s")
    assert (figures.stored, figures.lost, figures.duplicates, figures.wrong_value, figures.extra) == (
        len(expected), 0, 0, 0, 0)


def test_a_minority_of_refused_records_become_rejections_and_the_rest_is_stored(
        ctx: Context, sqlite_store: SqliteStore) -> None:
    """The other side of the majority rule: one row the store refuses among many is the data's fault."""
    behind_the_back(sqlite_store.path, "CREATE TRIGGER refuse BEFORE INSERT ON readings WHEN NEW.value = 49.9 "
                    "BEGIN SELECT RAISE(ABORT, 'value refused'); END")
    acked: list[int] = []
    pipeline = IngestPipeline(PayloadDecoder(ctx.registry, ctx.catalogue), sqlite_store, worker="t",
                              ack=acked.extend, backoff_first_s=0.001, backoff_cap_s=0.01)
    messages, expected = stream(METRIC, 40)
    messages.append((f"nongyun/v1/{STATIONS[0]}/telemetry", json_reading(next(iter(expected))[1] - 1, METRIC, 49.9)))
    pipeline.start()
    for token, (topic, payload) in enumerate(messages):
        pipeline.submit(topic, payload, token)
    assert pipeline.block_till_done(20)
    pipeline.stop()
    assert acked == list(range(len(messages)))
    assert pipeline.stats().rejected == {"store_rejected": 1}
    assert tally(sqlite_store.path, METRIC, expected).lost == 0
    assert [(d, r) for d, r, _ in rejections(sqlite_store.path)] == [(STATIONS[0], "store_rejected")]


# -- one poison record among many ------------------------------------------------------------------------


class PoisonStore(SqliteStore):
    """Every write holding the poison reading raises an exception no backend maps."""

    poison_ts = -1
    attempts = 0

    def write(self, batch: Batch) -> None:
        if any(r.ts == self.poison_ts for r in batch.readings):
            self.attempts += 1
            raise RuntimeError("poison: the driver chokes on this record")
        super().write(batch)


def test_a_poison_record_is_isolated_as_store_error_and_every_good_record_is_stored(
        ctx: Context, tmp_path: Path) -> None:
    store = PoisonStore(tmp_path / "nongyun.sqlite3")
    messages, expected = stream(METRIC, 30)  # 150 good messages
    poison = (f"nongyun/v1/{STATIONS[1]}/telemetry", json_reading(next(iter(expected))[1] - 5, METRIC, 12.5))
    store.poison_ts = next(iter(expected))[1] - 5
    messages.insert(77, poison)
    acked: list[int] = []
    pipeline = IngestPipeline(PayloadDecoder(ctx.registry, ctx.catalogue), store, worker="t", ack=acked.extend,
                              backoff_first_s=0.001, backoff_cap_s=0.01)
    pipeline.start()
    began = time.monotonic()
    try:
        for token, (topic, payload) in enumerate(messages):
            pipeline.submit(topic, payload, token)
        assert pipeline.block_till_done(20), pipeline.stats()
        took = time.monotonic() - began
        stats = pipeline.stats()
    finally:
        pipeline.stop()
    figures = tally(store.path, METRIC, expected)
    stored_rejections = rejections(store.path)
    store.close()
    print(f"\npoison: {figures.line('good')}; poison attempts {store.attempts} (threshold {POISON_AFTER}), "
          f"rejected {stats.rejected}, settled in {took:.2f} s")
    assert acked == list(range(len(messages)))
    assert (figures.stored, figures.lost, figures.extra) == (len(expected), 0, 0)
    assert stats.rejected == {"store_error": 1} and stats.state == "running"
    assert [(d, r) for d, r, _ in stored_rejections] == [(STATIONS[1], "store_error")]
    assert stored_rejections[0][2].startswith("RuntimeError: poison")


class BrokenStore(SqliteStore):
    """Every write raises the same exception nothing maps: a bug, not a record."""

    def write(self, batch: Batch) -> None:
        raise RuntimeError("bug in every write")


def test_a_failure_of_every_record_is_held_not_isolated(ctx: Context, tmp_path: Path) -> None:
    """N identical unmapped failures where every record fails is the store's fault: no rejections."""
    store = BrokenStore(tmp_path / "nongyun.sqlite3")
    messages, _ = stream(METRIC, 4)
    acked: list[int] = []
    pipeline = IngestPipeline(PayloadDecoder(ctx.registry, ctx.catalogue), store, worker="t", ack=acked.extend,
                              backoff_first_s=0.001, backoff_cap_s=0.01)
    pipeline.start()
    try:
        for token, (topic, payload) in enumerate(messages):
            pipeline.submit(topic, payload, token)
        time.sleep(1.0)
        stats = pipeline.stats()
    finally:
        pipeline.stop(drain=False, timeout=1)
        store.close()
    assert acked == []
    assert stats.state == "store_error" and "bug in every write" in stats.store_error, stats
    assert stats.rejected == {} and stats.pending == len(messages), stats


# -- a writer stuck in the store -------------------------------------------------------------------------


class StuckStore(SqliteStore):
    """``write`` never returns until released: a hung disk or a server that never answers."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.entered = threading.Event()
        self.release = threading.Event()

    def write(self, batch: Batch) -> None:
        self.entered.set()
        self.release.wait(60)
        raise StoreFault("released")


def test_stop_returns_within_its_timeout_with_a_writer_stuck_in_the_store(
        ctx: Context, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = StuckStore(tmp_path / "nongyun.sqlite3")
    acked: list[int] = []
    pipeline = IngestPipeline(PayloadDecoder(ctx.registry, ctx.catalogue), store, worker="t", ack=acked.extend)
    messages, _ = stream(METRIC, 2)
    pipeline.start()
    for token, (topic, payload) in enumerate(messages):
        pipeline.submit(topic, payload, token)
    assert store.entered.wait(5)
    began = time.monotonic()
    drained = pipeline.stop(drain=True, timeout=0.5, abort_s=0.5)
    took = time.monotonic() - began
    store.release.set()
    store.close()
    print(f"\nstop with a stuck writer returned in {took:.2f} s (timeout 0.5 + 0.5 s), {len(messages)} unacknowledged")
    assert not drained and acked == []
    assert took < 1.5
    assert f"leaving {len(messages)} message(s) unacknowledged" in caplog.text


def test_store_rejected_is_only_for_one_records_content(tmp_path: Path) -> None:
    """The mapping at the edge: a missing table is a fault, a constraint on a value a rejection."""
    store = SqliteStore(tmp_path / "nongyun.sqlite3")
    try:
        with pytest.raises(StoreFault, match="no such table"), store._guard():
            store._conn().execute("INSERT INTO no_such_table VALUES (1)")
        with pytest.raises(StoreRejected), store._guard():
            store._conn().execute("INSERT INTO meta (key, value) VALUES ('k', NULL)")
        with pytest.raises(StoreRejected), store._guard():
            store._conn().execute("SELECT ?", (1 << 70,))
    finally:
        store.close()


# -- retained messages handed over again on every reconnect -----------------------------------------------


def test_a_retained_message_seen_again_after_reconnects_is_acknowledged_and_counted_once(
        ctx: Context, sqlite_store: SqliteStore) -> None:
    acked: list[int] = []
    pipeline = IngestPipeline(PayloadDecoder(ctx.registry, ctx.catalogue), sqlite_store, worker="t",
                              ack=acked.extend)
    flood = ("nongyun/v1/not-registered/telemetry", b'{"ts": 1, "readings": {"soil_temp": 1}}')
    status = (f"nongyun/v1/{STATIONS[0]}/status", b"online")
    pipeline.start()
    token = 0
    for _reconnect in range(5):  # the broker's hand-over after each (re)subscribe
        for topic, payload in (flood, status):
            pipeline.submit(topic, payload, token, retained=True)
            token += 1
        assert pipeline.block_till_done(10)
    pipeline.submit(status[0], b"offline", token, retained=True)  # new content: counted
    assert pipeline.block_till_done(10)
    stats = pipeline.stats()
    pipeline.stop()
    counters = sqlite_store.counters()
    print(f"\nretained: 11 hand-overs, counted {stats.received}, repeats {stats.retained_repeats}, "
          f"rejected {stats.rejected}")
    assert acked == list(range(token + 1))
    assert (stats.received, stats.retained_repeats, stats.rejected) == (3, 8, {"unknown_device": 1})
    assert len(rejections(sqlite_store.path)) == 1
    assert (counters.received, counters.rejected) == (3, {"unknown_device": 1})  # the store's totals too


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), st.sampled_from([b"x", b"y", b"z"]), st.booleans()),
                max_size=60))
def test_retained_memory_calls_repeat_only_retained_bytes_seen_before_and_stays_bounded(
        ops: list[tuple[str, bytes, bool]]) -> None:
    memory = RetainedMemory(max_topics=2, per_topic=2)
    for i, (topic, payload, retained) in enumerate(ops):
        repeat = memory.repeat(topic, payload, retained)
        if repeat:
            assert retained and any(t == topic and p == payload for t, p, _ in ops[:i])
        assert len(memory._seen) <= 2 and all(len(v) <= 2 for v in memory._seen.values())
    if ops and ops[-1][2]:  # a retained message handed over twice in a row is a repeat the second time
        assert memory.repeat(ops[-1][0], ops[-1][1], True)
