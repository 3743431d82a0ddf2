"""Yield totals of a region per township, village, crop or year.

Per-area yields are always Σyield / Σarea of the group (area-weighted): a 1-亩 test plot must not
weigh as much as a 500-亩 field, so totals stay as sums here and the ratio is taken only when they
are shown. Every region of the grouping tier is listed, with zeros where nothing was harvested, so
a township that has not reported shows as a gap, not as a missing row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..context import Context
from ..regions import LEVEL_DIGITS, Region
from ..store import Store
from ..store.base import InRegion, YieldsQuery, YieldTotals
from ..times import local_year, year_bounds

YieldsGroup = Literal["township", "village", "crop", "year"]
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


def _totals(t: YieldTotals | None) -> Totals:
    return Totals(t.records, t.area_ha, t.yield_kg) if t is not None else NONE


def yield_totals(ctx: Context, store: Store, *, region: str | None, year: int | None, crop: str | None,
                 group_by: YieldsGroup | None, now: int, within: Region | None = None) -> YieldsReport:
    """``within``: only the villages of the caller's scope count (the region lies above it)."""
    tz = ctx.settings.tz
    node = ctx.tree.get(region or ctx.tree.district.code)
    part = within or node
    grouping: YieldsGroup = group_by or DEFAULT_GROUP[node.level]
    if year is None and grouping != "year":
        year = local_year(now, tz)
    start, end = (year_bounds(year, tz) if year is not None
                  else (year_bounds(FIRST_YEAR, tz)[0], year_bounds(LAST_YEAR, tz)[1]))
    found = store.yields(YieldsQuery(InRegion.of(part), start, end, grouping, tz, crop))
    by_key = {t.key: t for t in found}
    groups: list[GroupTotals] = []
    if grouping in LEVEL_DIGITS:
        for n in ctx.tree.tier_around(part, grouping):
            groups.append(GroupTotals(n.code, n.name, _totals(by_key.pop(n.code, None))))
    for key, t in sorted(by_key.items()):  # crops and years; regions no longer in the tree
        name = ctx.catalogue.crops[key].name_zh if grouping == "crop" and key in ctx.catalogue.crops else key
        groups.append(GroupTotals(key, name, _totals(t)))
    total = Totals(sum(t.records for t in found), sum(t.area_ha for t in found), sum(t.yield_kg for t in found))
    return YieldsReport(node, within, year, grouping, crop, groups, total)
