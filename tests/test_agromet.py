"""活动积温, frost dates and rain: the pure rules (service/agromet.py) on hand-computed series and
hypothesis boundaries, and the grouping (service/queries/agromet.py) on a real SQLite store with a
fixed series that spans a year boundary in local (Beijing) time."""

# ruff: noqa: F811  (pytest fixtures imported from tests/test_api_support.py are parameters here)

from __future__ import annotations

from datetime import date, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from service.agromet import (
    Days,
    active_accumulated_temperature,
    days_since_rain,
    frost_dates,
    group_days,
    rainfall_total,
    same_day_last_year,
    season,
    tenth,
)
from service.context import Context
from service.queries.agromet import AgrometReport, agromet, day_start
from service.records import Batch, Reading
from service.store import Store
from service.store.base import Agg, InRegion, ReadingsQuery
from service.store.sqlite import SqliteStore
from service.times import DAY_MS, local_date
from tests.test_api_support import api_ctx, api_settings, local_ms, store  # noqa: F401 (fixtures)

UTC = ZoneInfo("UTC")
V1, V2 = "211204101200", "211204101202"  # two villages of 张相镇 (211204101)
ZX = "211204101"
A, B = "qh-st-101200-1", "qh-st-101202-1"

# The fixed series (Beijing local times). Daily mean = mean of the day's samples, daily min = the
# lowest, daily rain = their sum; "local day" is the Asia/Shanghai calendar day.
SERIES: list[tuple[str, str, str, dict[str, float]]] = [
    (A, V1, "2025-01-01T00:30", {"air_temp": -10.0}),  # UTC: 2024-12-31 16:30 — a 2024 day in UTC
    (A, V1, "2025-04-20T02:00", {"air_temp": -1.5}),  # 04-20: mean 3.5, min -1.5 (frost)
    (A, V1, "2025-04-20T14:00", {"air_temp": 8.5}),
    (A, V1, "2025-05-05T02:00", {"air_temp": 0.0}),  # 05-05: mean 7.0, min 0.0 (frost: exactly 0 counts)
    (A, V1, "2025-05-05T14:00", {"air_temp": 14.0}),
    (A, V1, "2025-06-01T02:00", {"air_temp": 12.0}),  # 06-01: mean 18.0, min 12.0
    (A, V1, "2025-06-01T14:00", {"air_temp": 24.0}),
    (A, V1, "2025-07-15T02:00", {"air_temp": 20.0, "rainfall": 5.0}),  # 07-15: mean 25.0, rain 12.5
    (A, V1, "2025-07-15T14:00", {"air_temp": 30.0, "rainfall": 7.5}),
    (A, V1, "2025-09-20T02:00", {"air_temp": 6.0}),  # 09-20: mean 10.0 exactly (counts), rain 4.9 (< 5)
    (A, V1, "2025-09-20T14:00", {"air_temp": 14.0, "rainfall": 4.9}),
    (A, V1, "2025-09-21T02:00", {"air_temp": 5.0}),  # 09-21: mean 9.9 (does not count)
    (A, V1, "2025-09-21T14:00", {"air_temp": 14.8}),
    (A, V1, "2025-10-12T02:00", {"air_temp": -0.5}),  # 10-12: mean 4.5, min -0.5 (first autumn frost)
    (A, V1, "2025-10-12T14:00", {"air_temp": 9.5}),
    (A, V1, "2025-12-31T23:30", {"air_temp": 12.0}),  # UTC 15:30 on 31 Dec: local day 12-31, mean 12.0
    (A, V1, "2026-01-01T00:30", {"air_temp": -2.0}),  # UTC 16:30 on 31 Dec: local day 2026-01-01 (frost)
    (B, V2, "2025-06-01T02:00", {"air_temp": 14.0}),  # B 06-01: mean 20.0, min 14.0
    (B, V2, "2025-06-01T14:00", {"air_temp": 26.0}),
    (B, V2, "2025-07-15T15:00", {"rainfall": 20.0}),  # B 07-15: rain 20.0, no temperature
]


def seed_series(store: Store) -> None:
    """The fixed series into either backend."""
    store.write(Batch(readings=[Reading(dev, village, local_ms(ts), dict(values))
                                for dev, village, ts, values in SERIES]))


def _report(ctx: Context, store: SqliteStore, now: str, *, region: str, year: int | None = None) -> AgrometReport:
    return agromet(ctx, store, region=region, year=year, group_by=None, now=local_ms(now))


# -- the rules on hand-made days --------------------------------------------------------------

D = date(2025, 1, 1)


def test_active_accumulated_temperature_sums_only_days_of_10_degrees_and_more() -> None:
    means = {D: 9.9, D + timedelta(1): 10.0, D + timedelta(2): 15.5, D + timedelta(3): -3.0}
    # 10.0 + 15.5 = 25.5; 9.9 and -3.0 add nothing (not Σ(mean − 10): that would be 有效积温 5.5)
    assert active_accumulated_temperature(means, D, D + timedelta(3)) == 25.5
    assert active_accumulated_temperature(means, D + timedelta(2), D + timedelta(2)) == 15.5  # the range bounds it
    assert active_accumulated_temperature(means, D, D) == 0.0  # measured, none warm enough
    assert active_accumulated_temperature({}, D, D + timedelta(3)) is None  # nothing measured


def test_daily_values_are_kept_to_a_tenth_before_thresholds_and_sums() -> None:
    assert tenth(9.95) == 10.0 and tenth(9.94) == 9.9 and tenth(-0.05) == -0.1 and tenth(16.25) == 16.3
    assert active_accumulated_temperature({D: 9.95}, D, D) == 10.0  # reads 10.0 on the record: counts
    assert active_accumulated_temperature({D: 9.94}, D, D) == 0.0
    # the sum is exact however many tenths: 0.1 added 30 times in floats is 3.0000000000000013
    assert active_accumulated_temperature({D + timedelta(i): 10.1 for i in range(30)}, D, D + timedelta(29)) == 303.0


def test_frosts_split_at_1_july_into_the_last_spring_and_first_autumn_frost() -> None:
    mins = {date(2025, 3, 1): -8.0, date(2025, 5, 10): 0.0, date(2025, 5, 11): 0.1, date(2025, 6, 30): 1.0,
            date(2025, 7, 1): -0.2, date(2025, 10, 1): -1.0}
    # frost days (≤ 0.0): 03-01, 05-10 (exactly 0), 07-01, 10-01; 05-11 (0.1) and 06-30 are not
    assert frost_dates(mins, date(2025, 1, 1), date(2025, 12, 31)) == (date(2025, 5, 10), date(2025, 7, 1))
    # until 1 July the last frost so far is provisional; no autumn frost yet
    assert frost_dates(mins, date(2025, 1, 1), date(2025, 4, 1)) == (date(2025, 3, 1), None)
    assert frost_dates({date(2025, 8, 1): 5.0}, date(2025, 1, 1), date(2025, 12, 31)) == (None, None)


def test_rain_total_and_days_since_the_last_rain_of_5_mm() -> None:
    rain = {date(2025, 6, 1): 5.0, date(2025, 6, 10): 4.9, date(2025, 6, 12): 0.0}
    assert rainfall_total(rain, date(2025, 1, 1), date(2025, 6, 30)) == 9.9
    assert days_since_rain(rain, date(2025, 1, 1), date(2025, 6, 30)) == 29  # 06-01 (5.0 counts) to 06-30
    assert days_since_rain(rain, date(2025, 1, 1), date(2025, 6, 1)) == 0  # it rained on the day
    assert days_since_rain(rain, date(2025, 6, 2), date(2025, 6, 30)) is None  # 4.9 mm is not a rain day
    assert rainfall_total({}, date(2025, 1, 1), date(2025, 6, 30)) is None
    assert rainfall_total({date(2025, 6, 12): 0.0}, date(2025, 1, 1), date(2025, 6, 30)) == 0.0  # dry, measured


def test_the_same_date_last_year_and_the_mean_over_stations() -> None:
    assert same_day_last_year(date(2024, 2, 29)) == date(2023, 2, 28)
    assert same_day_last_year(date(2026, 1, 1)) == date(2025, 1, 1)
    a = Days({D: 10.0, D + timedelta(1): 12.0}, {D: -1.0}, {})
    b = Days({D: 14.0}, {D: 1.0}, {D: 6.0})
    g = group_days([a, b])
    # a day is averaged over the stations that measured it: 02 Jan is a's 12.0, not (12.0 + 0) / 2
    assert g.mean_temp == {D: 12.0, D + timedelta(1): 12.0} and g.min_temp == {D: 0.0} and g.rain == {D: 6.0}


# -- hypothesis: boundaries and monotony --------------------------------------------------------

temps = st.floats(min_value=-50, max_value=60, allow_nan=False).map(tenth)


@given(st.lists(temps, min_size=1, max_size=200), st.lists(temps, min_size=1, max_size=30))
def test_active_accumulated_temperature_never_decreases_as_days_are_added(first: list[float],
                                                                           more: list[float]) -> None:
    series = {D + timedelta(i): v for i, v in enumerate(first)}
    before = active_accumulated_temperature(series, D, D + timedelta(400))
    series.update({D + timedelta(len(first) + i): v for i, v in enumerate(more)})
    after = active_accumulated_temperature(series, D, D + timedelta(400))
    assert before is not None and after is not None and after >= before
    assert abs(after - before - sum(v for v in more if v >= 10.0)) < 1e-6


@given(st.lists(temps, max_size=20), st.integers(min_value=0, max_value=19))
def test_a_day_at_exactly_10_degrees_counts_and_a_tenth_below_does_not(others: list[float], at: int) -> None:
    at = min(at, len(others))
    base = {D + timedelta(i): v for i, v in enumerate(others)}
    day = D + timedelta(at)
    total = active_accumulated_temperature({**base, day: 5.0}, D, D + timedelta(40)) or 0.0
    assert active_accumulated_temperature({**base, day: 10.0}, D, D + timedelta(40)) == total + 10.0
    assert active_accumulated_temperature({**base, day: 9.9}, D, D + timedelta(40)) == total


@given(st.dates(min_value=date(2025, 1, 1), max_value=date(2025, 12, 31)),
       st.floats(min_value=0.1, max_value=30, allow_nan=False).map(tenth))
def test_a_frost_at_exactly_0_degrees_counts_and_a_tenth_above_does_not(day: date, warm: float) -> None:
    start, end = date(2025, 1, 1), date(2025, 12, 31)
    spring = day.month < 7
    found = frost_dates({day: 0.0}, start, end)
    assert found == ((day, None) if spring else (None, day))
    assert frost_dates({day: warm}, start, end) == (None, None)


@given(st.lists(st.floats(min_value=0, max_value=60, allow_nan=False).map(tenth), min_size=1, max_size=60))
def test_days_since_rain_is_the_distance_to_the_latest_wet_day(rain: list[float]) -> None:
    series = {D + timedelta(i): v for i, v in enumerate(rain)}
    end = D + timedelta(len(rain) - 1)
    got = days_since_rain(series, D, end)
    wet = [i for i, v in enumerate(rain) if v >= 5.0]
    assert got == ((len(rain) - 1 - wet[-1]) if wet else None)


# -- the grouping on a real SQLite store, across a local year boundary ------------------------


def test_a_past_season_equals_the_hand_computation_in_local_days(api_ctx: Context, store: SqliteStore) -> None:
    seed_series(store)
    r = _report(api_ctx, store, "2026-03-01T12:00", year=2025, region=ZX)
    assert (r.year, r.as_of, r.last_as_of, r.group_by) == (2025, date(2025, 12, 31), date(2024, 12, 31), "village")
    by = {g.key: g for g in r.groups}
    v1 = by[V1].this
    # Village 1 = station A alone. Days ≥ 10 °C: 06-01 18.0 + 07-15 25.0 + 09-20 10.0 (exactly) + 12-31 12.0
    # (the 23:30 reading alone: the 00:30 one belongs to 1 January) = 65.0; 09-21 (9.9) does not count.
    assert v1.gdd10 == 65.0
    # Frost days: 01-01 (-10), 04-20 (-1.5), 05-05 (0.0 counts), 10-12 (-0.5): last spring frost 05-05,
    # first autumn frost 10-12.
    assert (v1.last_frost, v1.first_frost) == (date(2025, 5, 5), date(2025, 10, 12))
    # Rain: 07-15 5.0 + 7.5 = 12.5 and 09-20 4.9 → 17.4; the last day ≥ 5 mm is 07-15, 169 days before 12-31
    # (16 days left of July, then 31 + 30 + 31 + 30 + 31).
    assert (v1.rain_mm, v1.days_since_rain5) == (17.4, 169)
    assert by[V1].stations == 1 and by[V2].stations == 1
    # Village 2 = station B: 06-01 mean 20.0; rain 20.0 on 07-15; min 14.0: no frost.
    assert (by[V2].this.gdd10, by[V2].this.rain_mm, by[V2].this.last_frost) == (20.0, 20.0, None)
    # Last year (2024, to 31 Dec): nothing in local days; the 00:30 reading of 1 January 2025 is not 2024's.
    assert by[V1].last.gdd10 is None and by[V1].last.first_frost is None and by[V1].last.last_frost is None
    # Township 张相镇 = the mean over A and B of each day: 06-01 (18.0 + 20.0) / 2 = 19.0, the other days A's
    # alone: 19.0 + 25.0 + 10.0 + 12.0 = 66.0. Rain 07-15 (12.5 + 20.0) / 2 = 16.25 → 16.3, + 09-20 4.9 = 21.2.
    t = r.total
    assert (t.key, t.stations, t.this.gdd10, t.this.rain_mm, t.this.days_since_rain5) == (ZX, 2, 66.0, 21.2, 169)
    assert (t.this.last_frost, t.this.first_frost) == (date(2025, 5, 5), date(2025, 10, 12))
    others = [g for g in r.groups if g.key not in (V1, V2)]
    assert others and all(g.this.gdd10 is None and g.stations == 0 for g in others)  # listed, nothing measured


def test_the_new_season_starts_at_local_midnight_not_utc_midnight(api_ctx: Context, store: SqliteStore) -> None:
    seed_series(store)
    r = _report(api_ctx, store, "2026-01-01T12:00", region=V1)
    assert (r.year, r.as_of, r.last_as_of) == (2026, date(2026, 1, 1), date(2025, 1, 1))
    [g] = r.groups
    assert g.key == V1 and r.total is g
    # 2026-01-01 (local) holds only the 00:30 reading, -2.0: a measured season with no warm day (0.0, not
    # null) and its first frost day so far, which is the provisional last spring frost.
    assert (g.this.gdd10, g.this.last_frost, g.this.first_frost, g.this.rain_mm) == (0.0, date(2026, 1, 1), None, None)
    # 同期 (to 2025-01-01): the 00:30 reading of -10.0, likewise.
    assert (g.last.gdd10, g.last.last_frost) == (0.0, date(2025, 1, 1))


def test_utc_days_would_put_the_two_new_year_readings_together(store: SqliteStore) -> None:
    """The same store cut in UTC days files the boundary readings elsewhere: what the tests above catch."""
    seed_series(store)
    start, end = day_start(date(2024, 12, 30), UTC), day_start(date(2026, 1, 3), UTC)
    days = Days()
    daily: tuple[tuple[str, Agg], ...] = (("mean_temp", "mean"), ("min_temp", "min"))
    for name, agg in daily:
        found = store.readings(ReadingsQuery("air_temp", start, end, DAY_MS, agg, InRegion("village", V1), "device",
                                             UTC))
        getattr(days, name).update((local_date(t, UTC), v) for t, v in found[A] if local_date(t, UTC).month in (1, 12))
    # UTC 31 Dec 2025 holds both 12.0 (15:30Z) and -2.0 (16:30Z): mean 5.0, not ≥ 10, and a frost day;
    # UTC 1 January 2026 holds nothing; local 1 January 2025's -10.0 (16:30Z) lands on 31 Dec 2024.
    assert days.mean_temp == {date(2024, 12, 31): -10.0, date(2025, 12, 31): 5.0}
    assert days.min_temp == {date(2024, 12, 31): -10.0, date(2025, 12, 31): -2.0}
    assert season(days, date(2026, 1, 1)).gdd10 is None and season(days, date(2025, 12, 31)).gdd10 == 0.0


def test_a_caller_scoped_to_one_village_sees_its_township_only_through_that_village(api_ctx: Context,
                                                                                    store: SqliteStore) -> None:
    seed_series(store)
    r = agromet(api_ctx, store, region="211204", year=2025, group_by=None, now=local_ms("2026-03-01T12:00"),
                within=api_ctx.tree.get(V2))
    # the district by township, narrowed to village 2: one group, 张相镇, whose figures are station B's
    # alone (06-01 mean 20.0; rain 20.0), never the township's mean with station A (66.0, 21.2)
    assert [(g.key, g.stations, g.this.gdd10, g.this.rain_mm) for g in r.groups] == [(ZX, 1, 20.0, 20.0)]
    assert (r.total.key, r.total.this.gdd10, r.within) == (V2, 20.0, api_ctx.tree.get(V2))
