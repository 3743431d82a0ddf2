"""Retention: the job deletes what is older than each setting and nothing newer; rollups outlive
raw points; InfluxDB buckets are created with the settings as expiry rules."""

from __future__ import annotations

from pathlib import Path

from service.records import Batch, Reading, Rejection, YieldRecord
from service.retention import DAY_MS, Retention, enforce
from service.store.sqlite import SqliteStore
from tests.fake_influx import FakeInflux
from tests.store.influx_backends import FAKE_BUCKET, fake_influx_store

NOW = 1_780_000_000_000
VILLAGE = "211204101201"


def _store(tmp_path: Path) -> SqliteStore:
    store = SqliteStore(tmp_path / "s.sqlite3")
    ages = [1, 399, 401, 800]  # days before NOW
    store.write(Batch(
        readings=[Reading("st-1", VILLAGE, NOW - d * DAY_MS, {"soil_moisture": float(d), "air_temp": 1.0})
                  for d in ages],
        yields=[YieldRecord("", VILLAGE, NOW - d * DAY_MS, "corn", 1.0, 100.0) for d in ages],
        rejections=[Rejection(NOW - d * DAY_MS, "t", f"dev-{d}", "bad_json", "x", "{") for d in (1, 29, 31, 90)],
        worker="w"))
    store.refresh_rollups(100_000)
    return store


def test_the_job_deletes_what_is_older_than_each_setting_and_nothing_newer(tmp_path: Path) -> None:
    store = _store(tmp_path)
    conn = store._conn()
    rollups_before = conn.execute("SELECT COUNT(*), SUM(count) FROM rollup_1h").fetchone()
    summary = enforce(store, Retention(raw_days=400, rollup_days=0, rejection_days=30, counter_days=60), NOW)
    kept = sorted(ts for (ts,) in conn.execute("SELECT DISTINCT ts FROM readings"))
    assert kept == [NOW - 399 * DAY_MS, NOW - DAY_MS]  # 2 readings × 2 metrics kept, 4 values deleted
    assert sorted(ts for (ts,) in conn.execute("SELECT ts FROM yields")) == kept
    assert sorted(r.device for r in store.rejections()) == ["dev-1", "dev-29"]
    # rollups forever: still every hour of the deleted points, so long-range answers do not change
    assert conn.execute("SELECT COUNT(*), SUM(count) FROM rollup_1h").fetchone() == rollups_before
    # counters older than 60 days: the (device, reason) counts of dev-90 go, the worker's stay
    assert ("dev-90", "bad_json") not in store.rejection_counts() and ("dev-31", "bad_json") in store.rejection_counts()
    assert store.counters().received == 0 and store.counters().rejected == {"bad_json": 4}
    assert summary == "deleted 4 readings, 2 yields, 2 rejections, 1 counters"
    assert enforce(store, Retention(400, 0, 30, 60), NOW) == "nothing to delete"  # idempotent
    store.close()


def test_zero_keeps_forever_and_dirty_hours_keep_their_raw_points(tmp_path: Path) -> None:
    store = _store(tmp_path)
    assert enforce(store, Retention(0, 0, 0, 0), NOW) == "nothing to delete"
    # a late point in an old hour: its hour is dirty, so its raw points stay until it is rolled up
    store.write(Batch(readings=[Reading("st-2", VILLAGE, NOW - 500 * DAY_MS, {"soil_moisture": 5.0})]))
    enforce(store, Retention(raw_days=100), NOW)
    conn = store._conn()
    old = sorted(conn.execute("SELECT m.name, (? - r.ts) / ? FROM readings r JOIN metric_ids m ON m.id = r.metric "
                              "WHERE r.ts < ?", (NOW, DAY_MS, NOW - 100 * DAY_MS)))
    # soil_moisture keeps everything from its oldest dirty hour on (500 days: the late point, 401, 399);
    # before it (800) and air_temp's old points (nothing dirty) go
    assert old == [("soil_moisture", 399), ("soil_moisture", 401), ("soil_moisture", 500)]
    store.refresh_rollups(100_000)
    enforce(store, Retention(raw_days=100), NOW)
    assert conn.execute("SELECT COUNT(*) FROM readings WHERE ts < ?", (NOW - 100 * DAY_MS,)).fetchone()[0] == 0
    # rolled up before its raw point went: the late point and the two values of 800 days ago
    assert conn.execute("SELECT SUM(count) FROM rollup_1h WHERE hour <= ?", (NOW - 500 * DAY_MS,)).fetchone()[0] == 3
    store.close()


def test_influx_buckets_are_created_with_the_retention_settings() -> None:
    fake = FakeInflux().start()
    try:
        store = fake_influx_store(fake, raw_retention_days=400, rollup_retention_days=0)
        store.ping()
        store.write(Batch(readings=[Reading("st-1", VILLAGE, NOW, {"air_temp": 1.0})]))
        store.close()
        assert fake.buckets[FAKE_BUCKET].every_s == 400 * 86_400
        assert fake.buckets[FAKE_BUCKET + "_1h"].every_s == 0
    finally:
        fake.stop()
