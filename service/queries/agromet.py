"""Agrometeorological indicators per township or village: this season against the same date last year.

Daily values come from ``store.readings`` with 1-day windows in the configured zone (the local days
every backend cuts alike: ``service.times``), per station (``group_by="device"``) inside each group's
region, so a station that moved villages counts where it measured. A group's day is then the **mean
over its stations of each daily value** (daily mean, daily minimum, daily rainfall), and the
indicators are taken on that one series (``service.agromet``), not per station and then averaged:
a frost date or a days-since count averaged over stations is no day anyone saw, and a station that
missed days would drag a group's averaged Σ down, while a day averaged over the stations that
measured it keeps the group's season whole. One query span per group and metric covers both
seasons (1 January last year to the end of ``as_of``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from ..agromet import Days, Indicators, group_days, same_day_last_year, season
from ..context import Context
from ..errors import BadInput
from ..regions import Region
from ..store import Store
from ..store.base import Agg, InRegion, ReadingsQuery
from ..times import DAY_MS, first_instant, local_date
from .readings import default_group

AgrometGroup = Literal["township", "village"]
_EPOCH_DAY = date(1970, 1, 1)
# (field of Days, metric, daily aggregate)
DAILY: tuple[tuple[str, str, Agg], ...] = (("mean_temp", "air_temp", "mean"), ("min_temp", "air_temp", "min"),
                                           ("rain", "rainfall", "sum"))


@dataclass(frozen=True)
class GroupAgromet:
    key: str  # region code
    name: str
    stations: int  # stations with an air_temp or rainfall day this season
    this: Indicators
    last: Indicators  # the same indicators up to the same date last year (同期)


@dataclass(frozen=True)
class AgrometReport:
    region: Region
    within: Region | None  # the caller's scope when the region asked for lies above it
    year: int
    as_of: date
    last_as_of: date
    group_by: AgrometGroup
    groups: list[GroupAgromet]
    total: GroupAgromet


def day_start(d: date, tz: ZoneInfo) -> int:
    """The first instant of local day ``d`` (UTC ms): where a 1-day window starts."""
    return first_instant((d - _EPOCH_DAY).days * DAY_MS, tz)


def as_of_date(year: int | None, now: int, tz: ZoneInfo) -> tuple[int, date]:
    """(year, as_of): today for this year, 31 December for a past one; a future year is refused."""
    today = local_date(now, tz)
    year = today.year if year is None else year
    if year > today.year:
        raise BadInput(f"year: {year} has not begun (this year is {today.year}) / 年份不能晚于今年", "year")
    return year, (today if year == today.year else date(year, 12, 31))


def _station_days(store: Store, region: InRegion, start: int, end: int, tz: ZoneInfo) -> dict[str, Days]:
    """Each station's daily values in the region over [start, end)."""
    out: dict[str, Days] = {}
    for name, metric, agg in DAILY:
        found = store.readings(ReadingsQuery(metric, start, end, DAY_MS, agg, region, "device", tz))
        for device, points in found.items():
            series: dict[date, float] = getattr(out.setdefault(device, Days()), name)
            series.update((local_date(t, tz), v) for t, v in points)
    return out


def _group(store: Store, key: str, name: str, region: InRegion, span: tuple[int, int], as_of: date,
           last_as_of: date, tz: ZoneInfo) -> GroupAgromet:
    stations = _station_days(store, region, *span, tz)
    days = group_days(stations.values())
    season_start = date(as_of.year, 1, 1)
    active = sum(1 for s in stations.values()
                 if any(d >= season_start for series in (s.mean_temp, s.rain) for d in series))
    return GroupAgromet(key, name, active, season(days, as_of), season(days, last_as_of))


def agromet(ctx: Context, store: Store, *, region: str | None, year: int | None, group_by: AgrometGroup | None,
            now: int, within: Region | None = None) -> AgrometReport:
    """Every region of the grouping tier is listed, with None where nothing was measured.
    ``within``: only what lies inside the caller's scope is read (the region lies above it)."""
    tz = ctx.settings.tz
    node = ctx.tree.get(region or ctx.tree.district.code)
    part = within or node
    grouping: AgrometGroup = group_by or ("township" if default_group(node) == "township" else "village")
    year, as_of = as_of_date(year, now, tz)
    last_as_of = same_day_last_year(as_of)
    span = (day_start(date(year - 1, 1, 1), tz), day_start(as_of + timedelta(days=1), tz))
    groups = []
    for g in ctx.tree.tier_around(part, grouping):
        # A group above the scope (a village caller's township) is read only inside the scope.
        inside = part if g.contains(part.code) else g
        groups.append(_group(store, g.code, g.name, InRegion.of(inside), span, as_of, last_as_of, tz))
    same = [g for g in groups if g.key == part.code]
    total = same[0] if same else _group(store, part.code, part.name, InRegion.of(part), span, as_of, last_as_of, tz)
    return AgrometReport(node, within, year, as_of, last_as_of, grouping, groups, total)
