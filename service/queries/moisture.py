"""墒情 of a region per township or village for one or more local days (DESIGN.md "墒情").

A station's day is the mean of its soil_moisture samples that local day (``store.readings`` with
1-day windows in the configured zone, so both backends and their rollups answer it), made relative
with the station's own soil. A group's figure is the mean over its graded station-days, and its
grades are taken from that mean, never a vote of station grades: ten stations at 61 % and one at
20 % make a group that is short of water, which a majority grade would hide. Every region of the
grouping tier is listed, so a township without stations shows as ungraded rather than vanishing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Literal

from .. import moisture
from ..context import Context
from ..errors import BadInput
from ..regions import CHILD_LEVEL, Region
from ..registry import Device
from ..store import Store
from ..store.base import InRegion, ReadingsQuery
from ..times import DAY_MS, first_instant, local_date

MoistureGroupBy = Literal["township", "village"]
MAX_DAYS = 366
_EPOCH = date(1970, 1, 1)


@dataclass(frozen=True)
class MoistureGroup:
    key: str  # region code of the group ("" never)
    name: str  # Chinese name
    relative_pct: float | None  # mean relative moisture (%) over the graded stations and days; None: none graded
    grade: str | None  # one of moisture.GRADES or None
    drought: str | None  # one of moisture.DROUGHT or None
    stations: dict[str, int]  # grade → number of stations with that grade (graded stations only)
    frozen: int  # stations not graded because soil_temp <= 0 °C
    anomalous: int  # stations whose relative moisture is < 6 % or > 190 %
    missing: int  # registered stations with soil_moisture that sent nothing that day


@dataclass(frozen=True)
class MoistureReport:
    region: str
    start: date  # first local day
    days: int  # number of local days averaged (1 for the API's `date`)
    groups: list[MoistureGroup]  # one per child region of the grouping tier (every village when village)
    total: MoistureGroup  # the whole region


@dataclass
class _Station:
    """One station over the period: its graded days' relative moisture, and its other days."""

    device: Device
    graded: list[float] = field(default_factory=list)
    frozen: int = 0
    anomalous: int = 0


def day_bounds(start: date, days: int, ctx: Context) -> tuple[int, int]:
    """[first instant of ``start``, first instant of ``start + days``) in the configured zone, UTC ms."""
    tz = ctx.settings.tz
    wall = (start - _EPOCH).days * DAY_MS
    return first_instant(wall, tz), first_instant(wall + days * DAY_MS, tz)


def station_devices(ctx: Context, code: str) -> list[Device]:
    """Registered stations that measure soil_moisture, under a region (by their village now)."""
    return [d for d in ctx.registry.under(code) if d.kind == "station" and "soil_moisture" in d.metrics]


def moisture_report(ctx: Context, store: Store, region: str, start: date, days: int = 1,
                    group_by: str | None = None, within: str | None = None) -> MoistureReport:
    """``within``: the caller's scope when ``region`` lies above it (only its stations count).
    ``days`` > 1: a station is graded on the mean of its graded days; ``missing`` counts stations
    that sent nothing on any of the days, ``frozen``/``anomalous`` those with no graded day."""
    if not 1 <= days <= MAX_DAYS:
        raise BadInput(f"days: {days} is not between 1 and {MAX_DAYS}", "days")
    if group_by not in (None, "township", "village"):
        raise BadInput(f"group_by: {group_by!r} is not township or village", "group_by")
    node = ctx.tree.get(region)
    part = ctx.tree.get(within) if within else node
    grouping = group_by or CHILD_LEVEL[node.level] or "village"
    lo, hi = day_bounds(start, days, ctx)
    last = start + timedelta(days=days - 1)
    stations = {d.id: _Station(d) for d in station_devices(ctx, part.code)}
    means = _daily(ctx, store, "soil_moisture", part, lo, hi)
    temps = _daily(ctx, store, "soil_temp", part, lo, hi)
    th = ctx.soils.thresholds
    for dev_id, per_day in means.items():
        st = stations.get(dev_id)
        if st is None:  # a device no longer registered here (moved or removed): its village is unknown
            continue
        soil = ctx.soils.of_device(dev_id, st.device.village)
        measures_temp = "soil_temp" in st.device.metrics
        for day, value in per_day.items():
            if not start <= day <= last:
                continue
            temp = temps.get(dev_id, {}).get(day) if measures_temp else None
            g = moisture.classify(value, soil.field_capacity, temp, th)
            if g.state == "graded":
                st.graded.append(g.relative_pct)
            elif g.state == "frozen":
                st.frozen += 1
            else:
                st.anomalous += 1
    groups = [_group(n.code, n.name, [s for s in stations.values() if n.contains(s.device.village)], th)
              for n in ctx.tree.tier_around(part, grouping)]
    total = _group(node.code, node.name, stations.values(), th)
    return MoistureReport(node.code, start, days, groups, total)


def _daily(ctx: Context, store: Store, metric: str, part: Region, lo: int, hi: int) -> dict[str, dict[date, float]]:
    """Per device, its daily mean of ``metric`` by local date."""
    tz = ctx.settings.tz
    found = store.readings(ReadingsQuery(metric, lo, hi, DAY_MS, "mean", InRegion.of(part), "device", tz))
    return {dev: {local_date(t, tz): v for t, v in points} for dev, points in found.items()}


def _group(key: str, name: str, members: Iterable[_Station], th: moisture.Thresholds) -> MoistureGroup:
    values: list[float] = []
    counts: dict[str, int] = {}
    frozen = anomalous = missing = 0
    for st in members:
        if st.graded:
            values.extend(st.graded)
            g = moisture.grade(moisture.shown(sum(st.graded) / len(st.graded)), th)
            counts[g] = counts.get(g, 0) + 1
        elif st.frozen:
            frozen += 1
        elif st.anomalous:
            anomalous += 1
        else:
            missing += 1
    stations = {g: counts[g] for g in moisture.GRADES if g in counts}
    if not values:
        return MoistureGroup(key, name, None, None, None, stations, frozen, anomalous, missing)
    rel = sum(values) / len(values)
    figure = moisture.shown(rel)  # graded as shown: the API's relative_pct has one decimal
    return MoistureGroup(key, name, rel, moisture.grade(figure, th), moisture.drought_grade(figure, th), stations,
                         frozen, anomalous, missing)
