"""How the InfluxDB backend splits a readings range between the hourly bucket and raw points."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from service.store.influx_rollups import HOUR_MS, MAX_RAW_PARTS, Partials, plan, runs, whole_hour_windows

T = 1_780_000_000_000 // HOUR_MS * HOUR_MS  # an hour start


@given(st.integers(0, 200 * HOUR_MS), st.integers(1, 200 * HOUR_MS), st.sets(st.integers(-5, 210), max_size=40))
def test_parts_tile_the_range_and_read_every_dirty_hour_raw(offset: int, length: int, dirty_h: set[int]) -> None:
    start, end = T + offset, T + offset + length
    dirty = sorted(T + h * HOUR_MS for h in dirty_h)
    parts = plan(start, end, dirty)
    assert parts[0][1] == start and parts[-1][2] == end
    assert all(a < b for _, a, b in parts)
    assert all(parts[i][2] == parts[i + 1][1] for i in range(len(parts) - 1))  # contiguous, no overlap
    assert sum(src == "raw" for src, _, _ in parts) <= MAX_RAW_PARTS
    for src, a, b in parts:
        if src == "1h":  # whole hours only, none of them dirty
            assert a % HOUR_MS == 0 and b % HOUR_MS == 0
            assert not [h for h in dirty if a <= h < b]


def test_a_clean_aligned_range_is_one_rollup_part() -> None:
    assert plan(T, T + 90 * 24 * HOUR_MS, []) == [("1h", T, T + 90 * 24 * HOUR_MS)]
    assert plan(T + 1, T + HOUR_MS - 1, []) == [("raw", T + 1, T + HOUR_MS - 1)]
    edges = plan(T - 60_000, T + 2 * HOUR_MS + 60_000, [T + HOUR_MS])
    assert edges == [("raw", T - 60_000, T), ("1h", T, T + HOUR_MS), ("raw", T + HOUR_MS, T + 2 * HOUR_MS + 60_000)]


def test_runs_are_capped_in_length() -> None:
    hours = [T + h * HOUR_MS for h in (0, 1, 2, 3, 4, 7)]
    assert runs(hours) == [(T, T + 5 * HOUR_MS), (T + 7 * HOUR_MS, T + 8 * HOUR_MS)]
    assert runs(hours, max_len=2) == [(T, T + 2 * HOUR_MS), (T + 2 * HOUR_MS, T + 4 * HOUR_MS),
                                      (T + 4 * HOUR_MS, T + 5 * HOUR_MS), (T + 7 * HOUR_MS, T + 8 * HOUR_MS)]


def test_windows_of_whole_hours_only_in_zones_of_whole_hour_offsets() -> None:
    day = 24 * HOUR_MS
    assert whole_hour_windows(ZoneInfo("Asia/Shanghai"), T, T + 90 * day, HOUR_MS)
    assert whole_hour_windows(ZoneInfo("Europe/Berlin"), T, T + 365 * day, day)  # DST, but whole hours
    assert not whole_hour_windows(ZoneInfo("Asia/Kolkata"), T, T + day, HOUR_MS)  # +05:30
    assert not whole_hour_windows(ZoneInfo("Asia/Shanghai"), T, T + day, 30 * 60_000)


def test_partials_merge_exactly() -> None:
    mean = Partials("mean")
    mean.add("k", 0, "sum", 10.0)
    mean.add("k", 0, "count", 1.0)
    mean.add("k", 0, "sum", 6.0)
    mean.add("k", 0, "count", 3.0)
    assert mean.series() == {"k": [(0, 4.0)]}  # 16 / 4, not the mean of 10 and 2
    low = Partials("min")
    for v in (3.0, -1.0, 2.0):
        low.add("k", 5, "min", v)
    assert low.series() == {"k": [(5, -1.0)]}
