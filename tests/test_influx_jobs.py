"""The InfluxDB backend's jobs half on the fake server: what the downsampling writes, what a
90-day hourly query reads, dirty hours kept across a restart, history from before rollups, and the
jobs runner (and ``nongyun jobs``) working on InfluxDB. The JobsStore behaviour itself is the
contract suite's (tests/store/test_jobs_contract.py)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from influxdb_client.client.influxdb_client import InfluxDBClient
from influxdb_client.client.write_api import SYNCHRONOUS

from service.context import Context
from service.errors import StoreUnavailable
from service.jobs import start_jobs
from service.records import Batch, Reading
from service.store import flux, lineproto
from service.store.base import InRegion, ReadingsQuery, as_jobs_store
from service.store.influx import InfluxStore
from service.times import parse_rfc3339
from tests.fake_influx import FakeInflux
from tests.jobs_support import Clock, Recorder, refresh_all
from tests.store.influx_backends import FAKE_BUCKET, fake_influx_store

TZ = ZoneInfo("Asia/Shanghai")
HOUR = 3_600_000
DAY = 24 * HOUR
MIN10 = 600_000
ZHANGXIANG = InRegion("township", "211204101")
DISTRICT = InRegion("district", "211204")
V1, V2 = "211204101203", "211204101204"
DAY0 = parse_rfc3339("2026-06-01T00:00:00+08:00")
ROLLUP_BUCKET = FAKE_BUCKET + "_1h"
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def store(fake: FakeInflux) -> Iterator[InfluxStore]:
    s = fake_influx_store(fake)
    yield s
    s.close()


def raw_telemetry_read(fake: FakeInflux) -> int:
    """Raw telemetry rows covered by the ranges of the queries that read raw readings."""
    return sum(log.scanned.get("telemetry", 0) for log in fake.queries
               if log.bucket == FAKE_BUCKET and log.template.startswith("readings_"))


def test_downsampling_writes_count_sum_min_max_per_device_metric_and_hour(fake: FakeInflux,
                                                                          store: InfluxStore) -> None:
    store.write(Batch(readings=[
        Reading("st-a", V1, DAY0 + 60_000, {"soil_moisture": 10.0, "air_temp": 1.5}),
        Reading("st-a", V1, DAY0 + 30 * 60_000, {"soil_moisture": 14.0}),
        Reading("st-b", V2, DAY0 + HOUR + 5, {"soil_moisture": 30.0}),
    ]))
    assert fake.points(ROLLUP_BUCKET) == []
    assert refresh_all(store, 500) == 2  # two UTC hours, every metric of each
    got = {(r.tags["device"], r.tags["metric"], r.time // 1_000_000): {} for r in fake.points(ROLLUP_BUCKET)}
    for r in fake.points(ROLLUP_BUCKET):
        assert r.type == "float"
        got[(r.tags["device"], r.tags["metric"], r.time // 1_000_000)][r.field] = r.value
    assert got == {
        ("st-a", "soil_moisture", DAY0): {"count": 2.0, "sum": 24.0, "min": 10.0, "max": 14.0},
        ("st-a", "air_temp", DAY0): {"count": 1.0, "sum": 1.5, "min": 1.5, "max": 1.5},
        ("st-b", "soil_moisture", DAY0 + HOUR): {"count": 1.0, "sum": 30.0, "min": 30.0, "max": 30.0},
    }
    [tags] = {tuple(sorted(r.tags.items())) for r in fake.points(ROLLUP_BUCKET) if r.tags["device"] == "st-b"}
    assert dict(tags) == {"device": "st-b", "district": "211204", "metric": "soil_moisture",
                          "township": "211204101", "village": V2}
    rollup_queries = [log for log in fake.queries if log.template == "rollup_hours"]
    assert rollup_queries and all(log.params["_rollupBucket"] == ROLLUP_BUCKET for log in rollup_queries)
    # done again after a rewrite: the hour's points are replaced, not added to
    store.write(Batch(readings=[Reading("st-a", V1, DAY0 + 60_000, {"soil_moisture": 12.0})]))
    assert refresh_all(store, 500) == 1
    assert len(fake.points(ROLLUP_BUCKET)) == 12
    got = {(r.tags["device"], r.tags["metric"], r.field): r.value for r in fake.points(ROLLUP_BUCKET)
           if r.time // 1_000_000 == DAY0}
    assert (got[("st-a", "soil_moisture", "sum")], got[("st-a", "soil_moisture", "min")]) == (26.0, 12.0)


def test_ninety_days_hourly_reads_the_hourly_bucket_not_raw_points(fake: FakeInflux, store: InfluxStore) -> None:
    end = DAY0 + 90 * DAY + 25 * 60_000  # "now": 25 minutes into an hour
    start = end - 90 * DAY
    rng = random.Random(9)
    stations = [("st-a", V1), ("st-b", V1), ("st-c", V2)]
    readings = [Reading(dev, village, ts, {"soil_moisture": rng.randrange(0, 800) / 8})
                for ts in range(start - start % MIN10, end, MIN10) for dev, village in stations]
    for i in range(0, len(readings), 5000):
        store.write(Batch(readings=readings[i:i + 5000]))
    query = ReadingsQuery("soil_moisture", start, end, HOUR, "mean", ZHANGXIANG, "township", TZ)
    fake.queries.clear()
    from_raw = store.readings(query)  # nothing rolled up yet: raw points only
    # a mean is read as a sum and a count per series (each aggregated in storage): the range twice
    assert raw_telemetry_read(fake) == 2 * 90 * 144 * 3
    assert refresh_all(store, 500) == 90 * 24 + 1
    fake.queries.clear()
    from_rollups = store.readings(query)
    assert from_rollups == from_raw
    assert len(from_rollups["211204101"]) == 90 * 24 + 1
    # raw points only for the partial hours at the edges: 35 and 25 minutes of three stations
    assert raw_telemetry_read(fake) <= 2 * 2 * 4 * 3
    hourly = [log for log in fake.queries if log.bucket == ROLLUP_BUCKET]
    assert [log.template for log in hourly] == ["rollup_readings_mean@township"]
    assert len(fake.queries) <= 6  # the state of the range, the hourly bucket, the two edges as sum and count


def test_dirty_hours_survive_a_restart(fake: FakeInflux) -> None:
    first = fake_influx_store(fake)
    first.write(Batch(readings=[Reading("st-a", V1, DAY0 + h * HOUR, {"soil_moisture": 8.0}) for h in range(3)]))
    first.close()
    again = fake_influx_store(fake)
    try:
        assert again.refresh_rollups(10).windows == 3
        assert again.refresh_rollups(10).windows == 0
    finally:
        again.close()


def test_history_written_before_rollups_is_rolled_up_once(fake: FakeInflux, store: InfluxStore) -> None:
    # points stored by an older build: raw telemetry, no rollup state
    store.write(Batch(readings=[Reading("st-a", V1, DAY0, {"soil_moisture": 1.0})]))  # bootstrap + one new point
    old = [lineproto.reading_line(Reading("st-a", V1, DAY0 - h * HOUR, {"soil_moisture": float(h)}))
           for h in range(1, 49)]
    with InfluxDBClient(url=fake.url, token=fake.token, org=next(iter(fake.orgs))) as c:
        c.write_api(write_options=SYNCHRONOUS).write(FAKE_BUCKET, record="\n".join(old))
    query = ReadingsQuery("soil_moisture", DAY0 - 2 * DAY, DAY0 + DAY, DAY, "sum", DISTRICT, "village", TZ)
    before = store.readings(query)
    assert sum(v for _, v in before[V1]) == sum(range(1, 49)) + 1.0
    assert refresh_all(store, 500) == 49  # the 48 old hours, found by the one-time backfill, and the new one
    fake.queries.clear()
    assert store.readings(query) == before
    assert raw_telemetry_read(fake) == 0
    assert store.refresh_rollups().windows == 0
    assert not [log for log in fake.queries if log.template == "rollup_backfill"]  # once only


def test_alert_ids_are_microsecond_point_times_and_increase(fake: FakeInflux, store: InfluxStore) -> None:
    from service.store.base import Alert

    ids = []
    for i in range(5):
        a = store.open_alert(Alert(f"heat:{V1}-{i}", "heat", "warning", V1, None, "热", DAY0))
        assert a is not None
        ids.append(a.id)
    assert ids == sorted(ids) and len(set(ids)) == 5
    points = fake.points(FAKE_BUCKET, "alert")
    assert sorted({r.time for r in points}) == [i * 1000 for i in ids]
    types = {r.field: r.type for r in points}
    assert types == {"severity": "string", "message": "string", "raised_at": "integer"}


def test_the_jobs_runner_works_on_influxdb(ctx: Context, store: InfluxStore) -> None:
    t0 = parse_rfc3339("2026-06-10T00:00:00+08:00")  # corn in season
    jobs_store = as_jobs_store(store)
    assert jobs_store is not None
    clock, recorder = Clock(t0), Recorder()
    runner = start_jobs(ctx, jobs_store, clock=clock, publisher=recorder, start=False)
    try:
        values = [3.0, -0.5, 0.5, -0.2, 0.4, 1.0, 3.0, 3.0, 3.0, 4.0]  # a frost that hovers around 0 °C
        store.write(Batch(readings=[Reading("qh-st-101203-1", V1, t0 + h * HOUR + 5 * 60_000, {"air_temp": v})
                                    for h, v in enumerate(values)]))
        active = []
        for h in range(len(values)):
            clock.now = t0 + h * HOUR + 40 * 60_000
            for job in ("rollups", "station_health", "alerts"):
                run = runner.run(job)
                assert run.outcome == "ok", run
            active.append(sum(a.active for a in store.list_alerts(DISTRICT) if a.kind == "frost"))
        assert active == [0, 1, 1, 1, 1, 1, 1, 1, 0, 0]  # the same as on the embedded store
        [frost] = [a for a in store.list_alerts(DISTRICT) if a.kind == "frost"]
        assert (frost.severity, frost.value, frost.raised_at) == ("critical", -0.5, t0 + HOUR)
        assert "nongyun/v1/alerts/211204" in recorder.topics  # published once delivered
        assert store.undelivered_alerts("mqtt") == []
    finally:
        runner.shutdown()


def test_nongyun_jobs_runs_on_influxdb(fake: FakeInflux, tmp_path: Path) -> None:
    env = {**os.environ, "NONGYUN_STORE": "influxdb", "INFLUXDB_V2_URL": fake.url, "INFLUXDB_V2_TOKEN": fake.token,
           "INFLUXDB_V2_ORG": next(iter(fake.orgs)), "NONGYUN_INFLUXDB_BUCKET": FAKE_BUCKET,
           "NONGYUN_DATA_DIR": str(tmp_path / "data"), "NONGYUN_MQTT_URL": "mqtt://127.0.0.1:9",
           "NONGYUN_CONFIG": str(REPO / "config")}
    proc = subprocess.Popen([sys.executable, "-m", "service.cli", "jobs"], env=env, cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and proc.poll() is None:
            if any(log.template == "rollup_state" for log in list(fake.queries)):
                break
            time.sleep(0.05)
        assert proc.poll() is None, proc.communicate()[0]
        assert any(log.template == "rollup_ready" for log in fake.queries)  # the rollups job ran
        assert (tmp_path / "data" / "jobs.lock").exists()  # the lease is still the data folder's lock
    finally:
        proc.send_signal(signal.SIGTERM)
        out = proc.communicate(timeout=20)[0]
    assert "nongyun jobs running" in out
    assert "keeps no rollups" not in out


def test_rollup_templates_are_sent_verbatim(fake: FakeInflux, store: InfluxStore) -> None:
    store.write(Batch(readings=[Reading("st-a", V1, DAY0 + 60_000, {"soil_moisture": 8.0})]))
    refresh_all(store, 500)
    for agg in ("mean", "min", "max", "sum", "count"):
        fake.queries.clear()
        store.readings(ReadingsQuery("soil_moisture", DAY0 - 30 * 60_000, DAY0 + 2 * HOUR + 60_000, HOUR, agg,  # type: ignore[arg-type]
                                     DISTRICT, "village", TZ))
        texts = {log.text for log in fake.queries}
        assert flux.TEMPLATES[f"rollup_readings_{agg}@district"] in texts
        assert texts <= set(flux.TEMPLATES.values())


def test_a_write_landing_during_a_refresh_keeps_its_hour_dirty(fake: FakeInflux, store: InfluxStore) -> None:
    store.write(Batch(readings=[Reading("st-a", V1, DAY0 + 60_000, {"soil_moisture": 10.0})]))
    ingest = fake_influx_store(fake)  # another process: an ingest worker
    landed: list[str] = []

    def write_meanwhile(template: str) -> None:
        if template == "rollup_hours" and not landed:  # after the refresh read the hour's token
            landed.append(template)
            ingest.write(Batch(readings=[Reading("st-b", V1, DAY0 + 120_000, {"soil_moisture": 20.0})]))

    fake.before_query = write_meanwhile
    try:
        assert store.refresh_rollups().windows == 1
    finally:
        fake.before_query = None
        ingest.close()
    assert landed
    p = store.refresh_rollups()  # the late write changed the token: the hour is done again
    assert (p.windows, p.remaining) == (1, 0)
    query = ReadingsQuery("soil_moisture", DAY0, DAY0 + HOUR, HOUR, "mean", DISTRICT, "village", TZ)
    fake.queries.clear()
    assert store.readings(query) == {V1: [(DAY0, 15.0)]}
    assert raw_telemetry_read(fake) == 0


def test_a_missing_hourly_bucket_is_unavailable_then_created_again(fake: FakeInflux, store: InfluxStore) -> None:
    store.write(Batch(readings=[Reading("st-a", V1, DAY0 + 60_000, {"soil_moisture": 10.0})]))
    del fake.buckets[ROLLUP_BUCKET]  # an operator deleted it
    with pytest.raises(StoreUnavailable):
        store.refresh_rollups()
    assert store.refresh_rollups().windows == 1  # bootstrap made it again; the hour was still dirty
    assert len(fake.points(ROLLUP_BUCKET)) == 4
