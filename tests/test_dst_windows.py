"""Windows in zones with daylight saving time (issue 16): the rule of service/times.py, checked as
properties over zones that change their clocks, against Flux's own test table, and end to end
through both backends with tz=Europe/Berlin, before and after rollups and late data."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.records import Batch, Reading
from service.store.base import InRegion, ReadingsQuery, Store
from service.store.influx import InfluxStore
from service.store.influx_rollups import flux_windowing
from service.store.sqlite import SqliteStore
from service.times import (
    DAY_MS,
    format_local,
    local_clock,
    local_date,
    offset_changes,
    parse_rfc3339,
    utc_offset_ms,
    window_bounds,
    window_pieces,
    window_start,
    window_starts,
)
from tests.fake_influx import FakeInflux, _latest_bounds
from tests.jobs_support import refresh_all
from tests.store.influx_backends import fake_influx_store

MIN = 60_000
HOUR = 60 * MIN
NS = 1_000_000  # ns per ms
# Zones that change their clocks (Lord Howe by 30 minutes, Santiago at midnight, Troll by two
# hours), and Asia/Shanghai, which has not since 1991: the control.
ZONES = ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "America/Santiago", "Antarctica/Troll",
         "Asia/Shanghai"]
EVERY = [10 * MIN, 30 * MIN, HOUR, 2 * HOUR, 6 * HOUR, 12 * HOUR, DAY_MS, 7 * DAY_MS]
YEAR0, YEAR1 = parse_rfc3339("2025-01-01T00:00:00Z"), parse_rfc3339("2028-01-01T00:00:00Z")
CHANGES = {name: offset_changes(YEAR0, YEAR1, ZoneInfo(name)) for name in ZONES}
# How far each zone moves its clock: DST's size.
SHIFTS = {name: max(abs(utc_offset_ms(t, ZoneInfo(name)) - utc_offset_ms(t - 1, ZoneInfo(name))) for t in changes)
          if changes else 0 for name, changes in CHANGES.items()}


@st.composite
def instants(draw: st.DrawFn) -> tuple[ZoneInfo, int]:
    """A zone and an instant, most of them within a day and a half of one of its clock changes."""
    name = draw(st.sampled_from(ZONES))
    changes = CHANGES[name]
    if changes and draw(st.integers(0, 9)):
        t = draw(st.sampled_from(changes)) + draw(st.integers(-36 * HOUR, 36 * HOUR))
    else:
        t = draw(st.integers(YEAR0, YEAR1))
    return ZoneInfo(name), t


@settings(max_examples=400, deadline=None)
@given(instants(), st.sampled_from(EVERY))
def test_each_sample_is_in_exactly_one_window_and_windows_tile_time(zt: tuple[ZoneInfo, int], every: int) -> None:
    tz, t = zt
    margin = 2 * every + 3 * HOUR  # a window may outlast ``every`` by a clock change (Troll's: 2 h)
    starts = window_starts(t - margin, t + margin, every, tz)
    assert starts == sorted(set(starts))  # strictly increasing: no window twice, none empty
    for a, b in pairwise(starts):
        assert window_bounds(a, every, tz) == (a, b)  # each ends where the next begins: no gap, no overlap
    holding = [s for s, e in pairwise(starts) if s <= t < e]
    assert len(holding) == 1
    s = window_start(t, every, tz)
    assert holding == [s] and window_bounds(t, every, tz)[0] == s
    assert window_start(s, every, tz) == s  # idempotent: a window's key is in the window


@settings(max_examples=300, deadline=None)
@given(instants(), st.sampled_from([DAY_MS, 2 * DAY_MS, 7 * DAY_MS]))
def test_day_windows_start_at_local_midnight_and_last_the_local_days(zt: tuple[ZoneInfo, int], every: int) -> None:
    tz, t = zt
    s, e = window_bounds(t, every, tz)
    days = every // DAY_MS
    first, after = local_date(s, tz), local_date(e, tz)
    assert (after - first).days == days and local_date(e - 1, tz) == after - timedelta(days=1)
    assert local_date(s - 1, tz) == first - timedelta(days=1)  # s is the first instant of its local date
    wall = datetime.fromtimestamp(s / 1000, tz)
    if (wall.hour, wall.minute) != (0, 0):  # only where the clock skips midnight itself (Santiago)
        midnight = (datetime(first.year, first.month, first.day) - datetime(1970, 1, 1)) // timedelta(milliseconds=1)
        assert local_clock(s - 1, tz) < midnight < local_clock(s, tz)
    if every == DAY_MS:  # 23, 24 or 25 hours; 23.5 or 24.5 at Lord Howe, 22 or 26 at Troll
        shift = SHIFTS[tz.key]
        assert e - s in ({DAY_MS - shift, DAY_MS, DAY_MS + shift} if shift else {DAY_MS})
    if every == 7 * DAY_MS:  # Flux's weeks: from the epoch, a Thursday
        assert first.isoweekday() == 4


@settings(max_examples=300, deadline=None)
@given(instants(), st.sampled_from(EVERY), st.integers(1, 4 * DAY_MS))
def test_pieces_give_every_sample_its_window(zt: tuple[ZoneInfo, int], every: int, length: int) -> None:
    """The closed forms SQLite labels rows with are window_start itself."""
    tz, t = zt
    start, end = t - length // 2, t + length // 2 + 1
    pieces = window_pieces(start, end, every, tz)
    assert pieces[0].lo == start and pieces[-1].hi == end
    assert all(a.hi == b.lo for a, b in pairwise(pieces))
    for p in pieces:
        for u in {p.lo, (p.lo + p.hi) // 2, p.hi - 1}:
            assert p.window_start(u, every) == window_start(u, every, tz)


@settings(max_examples=300, deadline=None)
@given(instants(), st.sampled_from(EVERY))
def test_where_flux_files_a_sample_in_its_own_bounds_they_are_our_window(zt: tuple[ZoneInfo, int],
                                                                        every: int) -> None:
    """The fake InfluxDB ports Flux's window code; wherever Flux keeps a sample, it is our window."""
    tz, t = zt
    lo, hi = _latest_bounds(t * NS, every * NS, tz)
    if lo <= t * NS < hi:
        assert (lo // NS, hi // NS) == window_bounds(t, every, tz)
    elif every >= DAY_MS or (tz.key != "Antarctica/Troll" and every >= HOUR) or tz.key == "Asia/Shanghai":
        raise AssertionError("Flux loses a sample only where a window boundary falls inside a repeated hour")


# Flux's TestWindow_GetLatestBounds_InLocation (flux interval/window_test.go), the cases without an
# offset: (zone, instant, window start, window stop), daily windows.
FLUX_CASES = [
    ("America/Phoenix", "2017-09-03T12:00:00-07:00", "2017-09-03T00:00:00-07:00", "2017-09-04T00:00:00-07:00"),
    ("America/Denver", "2017-09-03T12:00:00-06:00", "2017-09-03T00:00:00-06:00", "2017-09-04T00:00:00-06:00"),
    ("Europe/Moscow", "2009-03-30T12:00:00+04:00", "2009-03-30T00:00:00+04:00", "2009-03-31T00:00:00+04:00"),
    ("America/Los_Angeles", "2017-03-12T03:00:00-07:00", "2017-03-12T00:00:00-08:00", "2017-03-13T00:00:00-07:00"),
    ("America/Los_Angeles", "2017-11-05T01:30:00-08:00", "2017-11-05T00:00:00-07:00", "2017-11-06T00:00:00-08:00"),
    ("Australia/Sydney", "2017-10-01T03:00:00+11:00", "2017-10-01T00:00:00+10:00", "2017-10-02T00:00:00+11:00"),
    ("Australia/Sydney", "2017-04-02T02:30:00+11:00", "2017-04-02T00:00:00+11:00", "2017-04-03T00:00:00+10:00"),
]


@pytest.mark.parametrize(("zone", "t", "start", "stop"), FLUX_CASES)
def test_flux_own_cases(zone: str, t: str, start: str, stop: str) -> None:
    tz, ms = ZoneInfo(zone), parse_rfc3339(t)
    want = (parse_rfc3339(start), parse_rfc3339(stop))
    assert window_bounds(ms, DAY_MS, tz) == want
    assert _latest_bounds(ms * NS, DAY_MS * NS, tz) == (want[0] * NS, want[1] * NS)  # the fake's port too


def test_sub_day_windows_keep_their_wall_clock_length() -> None:
    """Flux's rule for windows shorter than a day, at Berlin's two changes of 2026."""
    tz = ZoneInfo("Europe/Berlin")

    def bounds(t: str, every: int) -> tuple[str, str]:
        s, e = window_bounds(parse_rfc3339(t), every, tz)
        return format_local(s, tz), format_local(e, tz)

    # October: the hour of 02:00 is shown twice, so its window lasts two hours; the 6h window seven.
    assert bounds("2026-10-25T02:30:00+01:00", HOUR) == ("2026-10-25T02:00:00+02:00", "2026-10-25T03:00:00+01:00")
    assert bounds("2026-10-25T02:30:00+02:00", HOUR) == ("2026-10-25T02:00:00+02:00", "2026-10-25T03:00:00+01:00")
    assert bounds("2026-10-25T03:30:00+01:00", HOUR) == ("2026-10-25T03:00:00+01:00", "2026-10-25T04:00:00+01:00")
    assert bounds("2026-10-25T05:00:00+01:00", 6 * HOUR) == ("2026-10-25T00:00:00+02:00", "2026-10-25T06:00:00+01:00")
    # 10-minute windows: the one of 02:50 runs until the clock reaches 03:00 again, 70 minutes later.
    assert bounds("2026-10-25T02:05:00+01:00", 10 * MIN) == ("2026-10-25T02:50:00+02:00",
                                                             "2026-10-25T03:00:00+01:00")
    # March: 02:00 is never shown; its hour does not exist and the 6h window lasts five hours.
    assert bounds("2026-03-29T03:30:00+02:00", HOUR) == ("2026-03-29T03:00:00+02:00", "2026-03-29T04:00:00+02:00")
    assert bounds("2026-03-29T01:30:00+01:00", HOUR) == ("2026-03-29T01:00:00+01:00", "2026-03-29T03:00:00+02:00")
    assert bounds("2026-03-29T01:30:00+01:00", 6 * HOUR) == ("2026-03-29T00:00:00+01:00", "2026-03-29T06:00:00+02:00")


def test_flux_windowing_asks_for_finer_utc_windows_only_where_flux_would_lose_points() -> None:
    tz = ZoneInfo("Europe/Berlin")
    oct_lo, oct_hi = parse_rfc3339("2026-10-24T00:00:00+02:00"), parse_rfc3339("2026-10-27T00:00:00+01:00")
    assert flux_windowing(tz, oct_lo, oct_hi, DAY_MS) == (DAY_MS, "Europe/Berlin")
    assert flux_windowing(tz, oct_lo, oct_hi, HOUR) == (HOUR, "Europe/Berlin")
    assert flux_windowing(tz, oct_lo, oct_hi, 10 * MIN) == (10 * MIN, "UTC")
    assert flux_windowing(tz, oct_lo + 2 * DAY_MS, oct_hi, 10 * MIN) == (10 * MIN, "Europe/Berlin")  # after it
    # Flux files a sample read at 02:05 in the second pass under 02:00-02:10, whose bounds end at the
    # first pass: alone in its window, Flux would drop it.
    t = parse_rfc3339("2026-10-25T02:05:00+01:00")
    lo, hi = _latest_bounds(t * NS, 10 * MIN * NS, tz)
    assert not lo <= t * NS < hi


# -- end to end: the store with tz=Europe/Berlin ------------------------------------------------

BERLIN = ZoneInfo("Europe/Berlin")
DISTRICT = InRegion("district", "211204")
V1, V2 = "211204101203", "211204102200"
STEP = 10 * MIN
# Three local days around each change of 2026: 28-30 March (29th: 23 h) and 24-26 October (25th: 25 h).
SPANS = [(parse_rfc3339("2026-03-28T00:00:00+01:00"), parse_rfc3339("2026-03-31T00:00:00+02:00")),
         (parse_rfc3339("2026-10-24T00:00:00+02:00"), parse_rfc3339("2026-10-27T00:00:00+01:00"))]
# Each local day: its length in hours, and the UTC offset at its midnight.
DAYS = {date(2026, 3, 28): (24, "+01:00"), date(2026, 3, 29): (23, "+01:00"), date(2026, 3, 30): (24, "+02:00"),
        date(2026, 10, 24): (24, "+02:00"), date(2026, 10, 25): (25, "+02:00"), date(2026, 10, 26): (24, "+01:00")}
CHANGE_DAYS = (date(2026, 3, 29), date(2026, 10, 25))


def _batch() -> Batch:
    readings = [Reading("st-a", V1, ts, {"soil_moisture": (ts // STEP) % 97 / 8})
                for lo, hi in SPANS for ts in range(lo, hi, STEP)]
    readings += [Reading("st-b", V2, ts, {"soil_moisture": (ts // HOUR) % 13 / 4})
                 for lo, hi in SPANS for ts in range(lo, hi, HOUR)]
    return Batch(readings=readings)


def _q(start: int, end: int, every: int, agg: str = "count", group_by: str = "village") -> ReadingsQuery:
    return ReadingsQuery("soil_moisture", start, end, every, agg, DISTRICT, group_by, BERLIN)  # type: ignore[arg-type]


def _daily_counts(store: Store) -> dict[str, list[tuple[str, float]]]:
    out: dict[str, list[tuple[str, float]]] = {}
    for lo, hi in SPANS:
        for key, points in store.readings(_q(lo, hi, DAY_MS)).items():
            out.setdefault(key, []).extend((format_local(t, BERLIN), v) for t, v in points)
    return out


def _expected_daily(late: int = 0) -> dict[str, list[tuple[str, float]]]:
    """Per village, (local midnight, samples of the local day): V1 every 10 minutes (+ ``late`` on
    each change day), V2 every hour."""
    def per_day(per_hour: int, extra: int) -> list[tuple[str, float]]:
        return [(f"{d.isoformat()}T00:00:00{off}", float(hours * per_hour + (extra if d in CHANGE_DAYS else 0)))
                for d, (hours, off) in sorted(DAYS.items())]
    return {V1: per_day(6, late), V2: per_day(1, 0)}


def _late() -> Batch:
    """A second device in V1 reporting once into each change's hour, already rolled up: 01:30 CET on
    29 March (the hour before the jump) and 02:30 CET on 25 October (the second pass of 02:00)."""
    return Batch(readings=[Reading("st-late", V1, parse_rfc3339(t), {"soil_moisture": 1.0})
                           for t in ("2026-03-29T01:30:00+01:00", "2026-10-25T02:30:00+01:00")])


QUERIES = [(lo, hi, every, agg) for lo, hi in [SPANS[0], SPANS[1], (SPANS[0][0] + 7 * STEP, SPANS[0][1] - 5 * STEP),
                                              (SPANS[1][0] + 26 * HOUR + 3 * STEP, SPANS[1][1] - 11 * HOUR)]
           for every in (10 * MIN, HOUR, 3 * HOUR, 6 * HOUR, DAY_MS, 7 * DAY_MS)
           for agg in ("count", "mean", "max")]


def _answers(store: Store) -> list[object]:
    return [store.readings(_q(lo, hi, every, agg, group_by)) for lo, hi, every, agg in QUERIES
            for group_by in ("village", "device")]


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(tmp_path / "store.sqlite3", "Europe/Berlin")  # the store's days: Berlin days
    yield s
    s.close()


def test_sqlite_daily_counts_are_the_local_days_raw_rolled_up_and_after_late_data(sqlite_store: SqliteStore,
                                                                                   tmp_path: Path) -> None:
    store = sqlite_store
    store.write(_batch())
    assert _daily_counts(store) == _expected_daily()  # 138 samples on the 23-hour day, 150 on the 25-hour one
    raw = _answers(store)
    refresh_all(store)
    store.stats.reset()
    assert _daily_counts(store) == _expected_daily()
    assert store.stats.raw_rows == 0 and store.stats.rollup_rows > 0  # the DST days came from day rollups
    assert _answers(store) == raw  # no answer depends on whether rollups ran

    store.write(_late())  # into hours already rolled up
    assert _daily_counts(store) == _expected_daily(late=1)
    refresh_all(store)
    assert _daily_counts(store) == _expected_daily(late=1)
    fresh = SqliteStore(tmp_path / "fresh.sqlite3", "Europe/Berlin")  # the same points, never rolled up
    fresh.write(_batch())
    fresh.write(_late())
    assert _answers(store) == _answers(fresh)
    fresh.close()


def test_sqlite_hourly_windows_on_the_change_days(sqlite_store: SqliteStore) -> None:
    store = sqlite_store
    store.write(_batch())
    for rolled in (False, True):
        if rolled:
            refresh_all(store)
            store.stats.reset()
        march = dict(store.readings(_q(*SPANS[0], HOUR))[V1])
        october = dict(store.readings(_q(*SPANS[1], HOUR))[V1])
        if rolled:  # the double hour and the short day were summed from hour rollups
            assert store.stats.raw_rows == 0 and store.stats.rollup_rows > 0
        assert march[parse_rfc3339("2026-03-29T01:00:00+01:00")] == 6  # then 03:00: 02:00 never happens
        assert october[parse_rfc3339("2026-10-25T02:00:00+02:00")] == 12  # both passes of 02:00
        assert parse_rfc3339("2026-10-25T02:00:00+01:00") not in october
        assert len(march) == 71 and len(october) == 72  # 71 and 73 hours; October's double hour is one window


@pytest.fixture
def influx(fake: FakeInflux) -> Iterator[InfluxStore]:
    """The InfluxDB backend on the fake (tests/store's helper), flushing at once: a pending flush
    timer outliving the test would hang a later test that freezes the clock."""
    s = fake_influx_store(fake, flush_interval_ms=10)
    yield s
    s.close()


def test_influx_backend_on_the_fake_answers_as_the_embedded_store(influx: InfluxStore, tmp_path: Path) -> None:
    reference = SqliteStore(tmp_path / "ref.sqlite3", "Europe/Berlin")
    reference.write(_batch())
    influx.write(_batch())
    assert _daily_counts(influx) == _expected_daily()
    assert _answers(influx) == _answers(reference)  # raw points, Flux's windows in Europe/Berlin
    refresh_all(influx)
    assert _daily_counts(influx) == _expected_daily()
    assert _answers(influx) == _answers(reference)  # hour rollups where windows are whole hours
    influx.write(_late())
    reference.write(_late())
    assert _daily_counts(influx) == _expected_daily(late=1)
    refresh_all(influx)
    assert _answers(influx) == _answers(reference)
    reference.close()


def test_influx_backend_keeps_the_points_flux_alone_would_drop(influx: InfluxStore, tmp_path: Path) -> None:
    """A station that reports only during the second pass of 02:00 on 25 October: with 10-minute
    windows in Europe/Berlin Flux files each reading under a window whose bounds end in the first
    pass, and keeps none; the backend asks for UTC windows there and answers as the embedded store."""
    late = Batch(readings=[Reading("st-c", V2, parse_rfc3339(t), {"soil_moisture": 2.0})
                           for t in ("2026-10-25T02:05:00+01:00", "2026-10-25T02:15:00+01:00",
                                     "2026-10-25T02:25:00+01:00")])
    span = _q(*SPANS[1], 10 * MIN, group_by="device")
    window = parse_rfc3339("2026-10-25T02:50:00+02:00")  # [02:50 CEST, 03:00 CET): 70 minutes
    reference = SqliteStore(tmp_path / "ref.sqlite3", "Europe/Berlin")
    reference.write(late)
    assert reference.readings(span) == {"st-c": [(window, 3.0)]}
    reference.close()
    influx.write(late)
    assert influx.readings(span) == {"st-c": [(window, 3.0)]}
    refresh_all(influx)
    assert influx.readings(span) == {"st-c": [(window, 3.0)]}
