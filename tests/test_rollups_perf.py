"""A township over 90 days, hourly: from raw points before the rollups job, from rollups after.

56 stations (4 in each of 14 villages of 张相镇) at 10-minute data, generated straight into the file
with executemany (as a backlog would arrive, the rows' hours are then marked dirty). Slow: ~30 s.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from service.store.base import InRegion, ReadingsQuery
from service.store.sqlite import SqliteStore
from service.times import parse_rfc3339

TZ = ZoneInfo("Asia/Shanghai")
HOUR = 3_600_000
DAY = 24 * HOUR
END = parse_rfc3339("2026-09-01T00:00:00+08:00")
START = END - 90 * DAY
VILLAGES = [211204101200 + i for i in range(14)]
ZHANGXIANG = InRegion("township", "211204101")


def generate(store: SqliteStore, metrics: list[str]) -> int:
    conn = store._conn()  # straight into the file: the fastest way to a season of history
    conn.execute("BEGIN")
    devices = []
    for v in VILLAGES:
        for j in range(4):
            conn.execute("INSERT INTO device_ids (name) VALUES (?)", (f"st-{v % 1000}-{j}",))
            devices.append((conn.execute("SELECT last_insert_rowid()").fetchone()[0], v))
    rows = 0
    for m, name in enumerate(metrics):
        conn.execute("INSERT INTO metric_ids (name) VALUES (?)", (name,))
        mid = conn.execute("SELECT id FROM metric_ids WHERE name = ?", (name,)).fetchone()[0]
        batch = [(mid, ts, v, d, float((ts // 600_000 * 7 + d * 13 + m) % 400) / 8)
                 for ts in range(START, END, 600_000) for d, v in devices]
        conn.executemany("INSERT INTO readings VALUES (?, ?, ?, ?, ?)", batch)
        rows += len(batch)
    conn.execute("INSERT OR IGNORE INTO rollup_dirty SELECT DISTINCT metric, ts - ts % 3600000 FROM readings")
    conn.execute("COMMIT")
    return rows


def timed(store: SqliteStore, q: ReadingsQuery, n: int = 5) -> tuple[float, int]:
    times = []
    for _ in range(n):
        store.stats.reset()
        t = time.perf_counter()
        store.readings(q)
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times), store.stats.raw_rows


@pytest.mark.slow
def test_ninety_days_of_a_township_hourly_before_and_after_rollups(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "season.sqlite3", TZ)
    rows = generate(store, ["soil_moisture", "air_temp", "battery"])
    now = END - 25 * 60_000  # a dashboard's "last 90 days" ends at an arbitrary minute
    hourly = ReadingsQuery("soil_moisture", now - 90 * DAY, now, HOUR, "mean", ZHANGXIANG, "township", TZ)
    daily = ReadingsQuery("soil_moisture", now - 90 * DAY, now, DAY, "mean", ZHANGXIANG, "village", TZ)
    before_h, raw_h = timed(store, hourly)
    before_d, _ = timed(store, daily)
    expected_h, expected_d = store.readings(hourly), store.readings(daily)
    t = time.perf_counter()
    windows = 0
    while True:
        p = store.refresh_rollups(500)
        windows += p.windows
        if not p.remaining:
            break
    roll_s = time.perf_counter() - t
    after_h, raw_after_h = timed(store, hourly)
    after_d, raw_after_d = timed(store, daily)
    print(f"\n{rows} raw rows; rolled {windows} windows in {roll_s:.1f} s\n"
          f"township 90 d hourly: {before_h:.0f} ms ({raw_h} raw rows) → {after_h:.1f} ms ({raw_after_h} raw rows)\n"
          f"villages 90 d daily:  {before_d:.0f} ms → {after_d:.1f} ms ({raw_after_d} raw rows)")
    got_h, got_d = store.readings(hourly), store.readings(daily)
    assert got_h.keys() == expected_h.keys() and got_d.keys() == expected_d.keys()
    for got, expected in ((got_h, expected_h), (got_d, expected_d)):
        for key in expected:
            assert [w for w, _ in got[key]] == [w for w, _ in expected[key]]
            assert [v for _, v in got[key]] == pytest.approx([v for _, v in expected[key]], rel=1e-12)
    assert raw_h == len(range(START, now, 600_000)) * 56  # every sample of the township, before
    assert raw_after_h <= 2 * 3 * 56  # the 25-minute edges only
    assert after_h < before_h / 2 and after_d < before_d / 10
    store.close()
