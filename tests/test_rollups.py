"""Rollups of the embedded store: exact, incremental, fixed by late data, and read instead of raw points."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from service.records import Batch, Reading
from service.store.base import InRegion, ReadingsQuery
from service.store.sqlite import SqliteStore
from service.times import parse_rfc3339
from tests.jobs_support import dyadic_batch, refresh_all

TZ = ZoneInfo("Asia/Shanghai")
HOUR = 3_600_000
DAY = 24 * HOUR
MIN10 = 600_000
DISTRICT = InRegion("district", "211204")
ZHANGXIANG = InRegion("township", "211204101")
V1, V2, V3 = "211204101203", "211204101204", "211204102200"
DAY0 = parse_rfc3339("2026-06-01T00:00:00+08:00")  # a local midnight


def q(start: int, end: int, every: int = HOUR, agg: str = "mean", group_by: str = "township",
      villages: InRegion = DISTRICT, metric: str = "soil_moisture") -> ReadingsQuery:
    return ReadingsQuery(metric, start, end, every, agg, villages, group_by, TZ)  # type: ignore[arg-type]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(tmp_path / "store.sqlite3", TZ)
    yield s
    s.close()


def test_rollup_answers_equal_raw_answers_exactly(tmp_path: Path) -> None:
    rng = random.Random(5)
    batch = dyadic_batch(rng, DAY0 - 3 * DAY, DAY0 + 7 * DAY)
    rolled, raw = SqliteStore(tmp_path / "a.sqlite3", TZ), SqliteStore(tmp_path / "b.sqlite3", TZ)
    rolled.write(batch)
    raw.write(batch)
    assert refresh_all(rolled) > 0
    cases = [
        (DAY0 - 2 * DAY, DAY0 + 5 * DAY, HOUR), (DAY0 - 2 * DAY, DAY0 + 5 * DAY, DAY),
        (DAY0 - 2 * DAY + 17 * MIN10, DAY0 + 5 * DAY - 7 * MIN10, DAY),  # unaligned edges
        (DAY0 - 2 * DAY + 5 * MIN10, DAY0 + 3 * DAY + 50_000, 3 * HOUR), (DAY0, DAY0 + 4 * DAY, 2 * DAY),
    ]
    for start, end, every in cases:
        for agg in ("mean", "min", "max", "sum", "count"):
            for group_by in ("district", "township", "village", "device"):
                for metric in ("soil_moisture", "air_temp"):
                    query = q(start, end, every, agg, group_by, metric=metric)
                    raw.stats.reset()
                    expected = raw.readings(query)
                    assert raw.stats.rollup_rows == 0  # nothing rolled up: answered from raw points
                    assert rolled.readings(query) == expected, (start, end, every, agg, group_by, metric)
    rolled.stats.reset()
    rolled.readings(q(DAY0 - 2 * DAY, DAY0 + 5 * DAY, DAY))
    assert rolled.stats.raw_rows == 0 and rolled.stats.rollup_rows > 0
    rolled.close()
    raw.close()


def test_mean_is_total_over_count_not_a_mean_of_hourly_means(store: SqliteStore) -> None:
    # hour 1: one sample of 10; hour 2: three samples of 2. Mean of means would say 6, the day 4.
    store.write(Batch(readings=[Reading("st-a", V1, DAY0 + HOUR, {"soil_moisture": 10.0})] +
                      [Reading("st-a", V1, DAY0 + 2 * HOUR + i * MIN10, {"soil_moisture": 2.0}) for i in range(3)]))
    refresh_all(store)
    store.stats.reset()
    assert store.readings(q(DAY0, DAY0 + DAY, DAY)) == {"211204101": [(DAY0, 4.0)]}
    assert store.stats.raw_rows == 0


def test_late_data_fixes_the_rollup_it_touches(store: SqliteStore) -> None:
    store.write(Batch(readings=[Reading("st-a", V1, DAY0 + h * HOUR, {"soil_moisture": 20.0}) for h in range(72)]))
    refresh_all(store)
    query = q(DAY0, DAY0 + 3 * DAY, DAY, agg="mean", group_by="village")
    assert store.readings(query) == {V1: [(DAY0, 20.0), (DAY0 + DAY, 20.0), (DAY0 + 2 * DAY, 20.0)]}
    # a backlog arrives two days late for one hour of the first day: a second station, value 45
    store.write(Batch(readings=[Reading("st-b", V1, DAY0 + 5 * HOUR + 60_000, {"soil_moisture": 45.0})]))
    store.stats.reset()
    before_refresh = store.readings(query)
    # answered right at once: the dirty hour comes from raw points, the rest from rollups
    assert before_refresh == {V1: [(DAY0, 21.0), (DAY0 + DAY, 20.0), (DAY0 + 2 * DAY, 20.0)]}  # (24·20 + 45) / 25
    assert store.stats.raw_rows == 2  # the two samples of the one dirty hour
    assert refresh_all(store) == 1  # exactly the touched (metric, hour) window
    store.stats.reset()
    assert store.readings(query) == before_refresh
    assert store.stats.raw_rows == 0
    by_hour = store.readings(q(DAY0 + 5 * HOUR, DAY0 + 6 * HOUR, HOUR, agg="max", group_by="village"))
    assert by_hour == {V1: [(DAY0 + 5 * HOUR, 45.0)]}


def test_daily_rollups_follow_local_days(store: SqliteStore) -> None:
    late = parse_rfc3339("2026-06-01T23:30:00+08:00")  # 15:30 UTC, the same UTC day as the next sample
    early = parse_rfc3339("2026-06-02T00:30:00+08:00")
    store.write(Batch(readings=[Reading("st-a", V1, late, {"air_temp": 10.0}),
                                Reading("st-a", V1, early, {"air_temp": 20.0})]))
    refresh_all(store)
    store.stats.reset()
    got = store.readings(q(DAY0 - DAY, DAY0 + 3 * DAY, DAY, metric="air_temp"))
    assert got == {"211204101": [(DAY0, 10.0), (DAY0 + DAY, 20.0)]}
    assert store.stats.raw_rows == 0


def test_ninety_days_hourly_reads_rollups_not_raw_points(store: SqliteStore) -> None:
    end = DAY0 + 90 * DAY + 25 * 60_000  # "now": 25 minutes into an hour
    start = end - 90 * DAY
    rng = random.Random(9)
    stations = [("st-a", V1), ("st-b", V1), ("st-c", V2)]
    readings = [Reading(dev, village, ts, {"soil_moisture": rng.randrange(0, 800) / 8})
                for ts in range(start - start % MIN10, end, MIN10) for dev, village in stations]
    for i in range(0, len(readings), 5000):
        store.write(Batch(readings=readings[i:i + 5000]))
    query = q(start, end, HOUR, group_by="township", villages=ZHANGXIANG)
    store.stats.reset()
    from_raw = store.readings(query)  # nothing rolled up yet: every hour is dirty
    assert store.stats.raw_rows == 90 * 144 * 3
    refresh_all(store)
    store.stats.reset()
    from_rollups = store.readings(query)
    assert from_rollups == from_raw
    assert len(from_rollups["211204101"]) == 90 * 24 + 1
    # raw points only for the two partial hours at the edges: 25 minutes at each end
    assert store.stats.raw_rows <= 2 * 3 * 3
    assert store.stats.rollup_rows <= 90 * 24 * 3


def test_writes_mark_only_the_hours_they_touch(store: SqliteStore) -> None:
    store.write(Batch(readings=[Reading("st-a", V1, DAY0 + 10 * HOUR + 5, {"soil_moisture": 1.0, "air_temp": 2.0}),
                                Reading("st-a", V1, DAY0 + 10 * HOUR + 7, {"soil_moisture": 1.0})]))
    assert store.refresh_rollups(100).windows == 2  # (soil_moisture, 10h), (air_temp, 10h)
    assert store.refresh_rollups(100).windows == 0  # idempotent: nothing left


def test_a_store_from_before_rollups_rolls_its_history_up(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    s = SqliteStore(path, TZ)
    s.write(Batch(readings=[Reading("st-a", V1, DAY0 + h * HOUR, {"soil_moisture": float(h)}) for h in range(5)]))
    conn = s._conn()
    conn.execute("DELETE FROM rollup_dirty")
    conn.execute("DELETE FROM meta WHERE key LIKE 'rollup%'")  # as if written by a version without rollups
    s.close()
    reopened = SqliteStore(path, TZ)
    assert refresh_all(reopened) == 5
    reopened.stats.reset()
    assert reopened.readings(q(DAY0, DAY0 + DAY, DAY, agg="sum")) == {"211204101": [(DAY0, 10.0)]}
    assert reopened.stats.raw_rows == 0
    reopened.close()
