"""Yield totals of a region per township, village, crop, year or area group.

Per-area yields are always Σyield / Σarea of the group (area-weighted): a 1-亩 test plot must not
weigh as much as a 500-亩 field, so totals stay as sums here and the ratio is taken only when they
are shown. Every region of the grouping tier is listed, with zeros where nothing was harvested, so
a township that has not reported shows as a gap, not as a missing row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..context import Context
from ..errors import BadInput
from ..regions import LEVEL_DIGITS, Region
from ..store import Store
from ..store.base import InRegion, YieldsQuery, YieldTotals
from ..times import local_year, year_bounds

YieldsGroup = Literal["township", "village", "crop", "year", "area_group"]
OTHER_LAND = ("", "其他")  # group_by=area_group: the records of no area group
DEFAULT_GROUP: dict[str, YieldsGroup] = {"district": "township", "township": "village", "village": "crop"}
FIRST_YEAR, LAST_YEAR = 2000, 2100


@dataclass(frozen=True)
class Totals:
    records: int
    area_ha: float
    yield_kg: float


NONE = Totals(0, 0.0, 0.0)


@dataclass(frozen=True)
class GroupTotals:
    key: str  # region code, crop id or year
    name: str
    totals: Totals


@dataclass(frozen=True)
class YieldsReport:
    region: Region
    within: Region | None  # the caller's scope when the region asked for lies above it
    year: int | None  # None: group_by=year over every year
    group_by: YieldsGroup
    crop: str | None
    groups: list[GroupTotals]
    total: Totals
    unattributed: int = 0  # records counted in their device's village by fallback (DESIGN.md "Land")
    area_group: str | None = None  # the area group filter, if any


def _totals(t: YieldTotals | None) -> Totals:
    return Totals(t.records, t.area_ha, t.yield_kg) if t is not None else NONE


def yield_totals(ctx: Context, store: Store, *, region: str | None, year: int | None, crop: str | None,
                 group_by: YieldsGroup | None, now: int, within: Region | None = None,
                 area_group: str | None = None, status: Literal["approved"] | None = None) -> YieldsReport:
    """``within``: only the villages of the caller's scope count (the region lies above it).
    ``area_group``: only records of that group's plots (NotFound-like BadInput for an unknown id).
    ``status``: approved counts only approved records; None every record that is not void."""
    tz = ctx.settings.tz
    node = ctx.tree.get(region or ctx.tree.district.code)
    part = within or node
    grouping: YieldsGroup = group_by or DEFAULT_GROUP[node.level]
    if area_group is not None and ctx.land.group(area_group) is None:
        raise BadInput(f"area_group: {area_group[:64]!r} is not an area group", "area_group")
    if area_group is not None and grouping in ("crop", "year"):
        raise BadInput(f"area_group: cannot be combined with group_by={grouping} (yet)", "area_group")
    if year is None and grouping != "year":
        year = local_year(now, tz)
    start, end = (year_bounds(year, tz) if year is not None
                  else (year_bounds(FIRST_YEAR, tz)[0], year_bounds(LAST_YEAR, tz)[1]))
    region_q = InRegion.of(part)
    if grouping == "area_group" or area_group is not None:
        per_plot = store.yields(YieldsQuery(region_q, start, end, "plot", tz, crop, status))
        if area_group is not None:
            members = {p.id for p in ctx.land.plots(part.code, area_group)}
            per_plot = [t for t in per_plot if t.key in members]
        found = _by_area_group(ctx, per_plot) if grouping == "area_group" else _by_tier(ctx, per_plot, grouping)
        total = _sum(per_plot)
    else:
        found = store.yields(YieldsQuery(region_q, start, end, grouping, tz, crop, status))
        total = _sum(found)
    unattributed = (0 if area_group is not None
                    else store.yields_unattributed(YieldsQuery(region_q, start, end, "district", tz, crop, status)))
    by_key = {t.key: t for t in found}
    groups: list[GroupTotals] = []
    if grouping in LEVEL_DIGITS:
        for n in ctx.tree.tier_around(part, grouping):
            groups.append(GroupTotals(n.code, n.name, _totals(by_key.pop(n.code, None))))
    elif grouping == "area_group":
        for g in ctx.land.groups():
            groups.append(GroupTotals(g.id, g.name, _totals(by_key.pop(g.id, None))))
        groups.append(GroupTotals(OTHER_LAND[0], OTHER_LAND[1], _totals(by_key.pop(OTHER_LAND[0], None))))
    for key, t in sorted(by_key.items()):  # crops and years; regions no longer in the tree
        name = ctx.catalogue.crops[key].name_zh if grouping == "crop" and key in ctx.catalogue.crops else key
        groups.append(GroupTotals(key, name, _totals(t)))
    return YieldsReport(node, within, year, grouping, crop, groups, total, unattributed, area_group)


def _sum(found: list[YieldTotals]) -> Totals:
    return Totals(sum(t.records for t in found), sum(t.area_ha for t in found), sum(t.yield_kg for t in found))


def _add(acc: dict[str, list[float]], key: str, t: YieldTotals) -> None:
    slot = acc.setdefault(key, [0, 0.0, 0.0])
    slot[0] += t.records
    slot[1] += t.area_ha
    slot[2] += t.yield_kg


def _done(acc: dict[str, list[float]]) -> list[YieldTotals]:
    return [YieldTotals(k, int(n), a, y) for k, (n, a, y) in acc.items()]


def _by_area_group(ctx: Context, per_plot: list[YieldTotals]) -> list[YieldTotals]:
    """Per-plot sums → one sum per area group (a plot in two groups counts in both) and "" for
    records of no group (no plot, an unregistered plot label, or a plot of no group)."""
    acc: dict[str, list[float]] = {}
    for t in per_plot:
        plot = ctx.land.plot(t.key) if t.key else None
        for g in (plot.groups if plot is not None and plot.groups else (OTHER_LAND[0],)):
            _add(acc, g, t)
    return _done(acc)


def _by_tier(ctx: Context, per_plot: list[YieldTotals], level: str) -> list[YieldTotals]:
    """Per-plot sums of registered plots → sums per region of ``level``: a plot's records all lie
    in its village (ingest rejects a record whose village disagrees: ``plot_mismatch``)."""
    digits = LEVEL_DIGITS[level]  # type: ignore[index]
    acc: dict[str, list[float]] = {}
    for t in per_plot:
        plot = ctx.land.plot(t.key)
        if plot is not None:
            _add(acc, plot.village[:digits], t)
    return _done(acc)
