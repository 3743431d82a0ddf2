"""Agrometeorological indicators of a season from daily values: 活动积温, frost dates, rain.

Pure functions over series of local days (``date → value``), so each rule is checked against
hand-computed series and property tests whatever store the days came from (DESIGN.md "墒情 and
agrometeorology"). The conventions, fixed here once:

- Daily values are kept to 0.1 (°C, mm), rounded half up, before any threshold or sum, as daily
  climate records keep them: a threshold is met by the value a person reads off the record, and two
  backends that sum samples in a different order still agree to the last digit.
- ≥ 10 °C active accumulated temperature (≥ 10 °C 活动积温): Σ of the daily mean air temperature over
  the days whose mean is ≥ 10 °C (exactly 10.0 counts, with all of its 10.0). A colder day adds
  nothing; it is not the effective accumulated temperature (有效积温, Σ of mean − 10).
- A frost day: daily minimum air temperature ≤ 0 °C (exactly 0.0 counts).
- Liaoning's season convention: the calendar year is split at 1 July. The last spring frost (终霜)
  is the last frost day before 1 July, the first autumn frost (初霜) the first frost day on or after
  1 July. Liaoning's frost-free season runs from about late April–May to late September–October, so
  no frost of either season falls near the split. Until 1 July the last frost is provisional (the
  latest so far); before the first autumn frost it is None.
- A rain day: daily rainfall ≥ 5 mm (the usual threshold of a useful rain for dryland crops);
  days since: ``as_of`` − the latest such day of the season (0 when it rained ≥ 5 mm on ``as_of``),
  None when the season has none.
- A season is 1 January up to ``as_of`` (inclusive). "None" always means "nothing measured" or
  "no such day", never zero: 0.0 mm is a measured dry season, None a region without a rain gauge.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

ACTIVE_TEMP_C = 10.0
FROST_C = 0.0
RAIN_DAY_MM = 5.0
SPLIT_MONTH = 7  # 1 July: spring frosts before it, autumn frosts on or after it
_TENTH = Decimal("0.1")

Daily = Mapping[date, float]


def tenth(value: float) -> float:
    """``value`` to 0.1, halves away from zero (四舍五入) on the shortest decimal naming the float."""
    return float(Decimal(repr(value)).quantize(_TENTH, rounding=ROUND_HALF_UP))


def _exact_sum(values: Iterable[float]) -> float:
    """The sum of values kept to 0.1, exactly (no float drift, whatever the order)."""
    return float(sum((Decimal(repr(v)) for v in values), Decimal(0)))


def _in(series: Daily, start: date, end: date) -> dict[date, float]:
    """The days of [start, end], each value kept to 0.1."""
    return {d: tenth(v) for d, v in series.items() if start <= d <= end}


def active_accumulated_temperature(means: Daily, start: date, end: date, base: float = ACTIVE_TEMP_C) -> float | None:
    """Σ of the daily means ≥ ``base`` over [start, end]; None when no day of it was measured."""
    days = _in(means, start, end)
    if not days:
        return None
    return _exact_sum(v for v in days.values() if v >= base)


def frost_dates(mins: Daily, start: date, end: date, threshold: float = FROST_C) -> tuple[date | None, date | None]:
    """(last spring frost, first autumn frost) among the frost days of [start, end], split at 1 July
    of each day's own year."""
    frosts = sorted(d for d, v in _in(mins, start, end).items() if v <= threshold)
    spring = [d for d in frosts if d.month < SPLIT_MONTH]
    autumn = [d for d in frosts if d.month >= SPLIT_MONTH]
    return (spring[-1] if spring else None), (autumn[0] if autumn else None)


def rainfall_total(rain: Daily, start: date, end: date) -> float | None:
    days = _in(rain, start, end)
    return _exact_sum(days.values()) if days else None


def days_since_rain(rain: Daily, start: date, end: date, threshold: float = RAIN_DAY_MM) -> int | None:
    """Days from the latest day of [start, end] with ≥ ``threshold`` mm to ``end``."""
    wet = [d for d, v in _in(rain, start, end).items() if v >= threshold]
    return (end - max(wet)).days if wet else None


@dataclass(frozen=True)
class Days:
    """One station's or one group's daily values (local days)."""

    mean_temp: dict[date, float] = field(default_factory=dict)
    min_temp: dict[date, float] = field(default_factory=dict)
    rain: dict[date, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Indicators:
    gdd10: float | None  # ≥ 10 °C active accumulated temperature, °C·d
    first_frost: date | None  # first autumn frost (初霜)
    last_frost: date | None  # last spring frost (终霜), provisional until 1 July
    rain_mm: float | None
    days_since_rain5: int | None


def season(days: Days, as_of: date) -> Indicators:
    """The indicators of the season 1 January of ``as_of``'s year to ``as_of``."""
    start = date(as_of.year, 1, 1)
    last, first = frost_dates(days.min_temp, start, as_of)
    return Indicators(active_accumulated_temperature(days.mean_temp, start, as_of), first, last,
                      rainfall_total(days.rain, start, as_of), days_since_rain(days.rain, start, as_of))


def same_day_last_year(d: date) -> date:
    """The same calendar date one year earlier (同期); 29 February → 28 February."""
    try:
        return d.replace(year=d.year - 1)
    except ValueError:
        return d.replace(year=d.year - 1, day=28)


def mean_over(series: Iterable[Daily]) -> dict[date, float]:
    """Each day's mean over the series that have that day: a station that missed a day neither
    lowers the group's value nor cuts the day out."""
    acc: dict[date, list[float]] = {}
    for one in series:
        for d, v in one.items():
            acc.setdefault(d, []).append(v)
    return {d: sum(sorted(vs)) / len(vs) for d, vs in sorted(acc.items())}  # sorted: the same sum in any order


def group_days(stations: Iterable[Days]) -> Days:
    """A group's days: the mean over its stations of each daily value (mean, minimum, rainfall)."""
    listed = list(stations)
    return Days(mean_over(s.mean_temp for s in listed), mean_over(s.min_temp for s in listed),
                mean_over(s.rain for s in listed))
