"""Reading series per township, village or device, aggregated in windows aligned to local time."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..context import Context
from ..regions import CHILD_LEVEL, Region
from ..store import Store
from ..store.base import Agg, InRegion, ReadingsQuery

ReadingsGroup = Literal["township", "village", "device"]


@dataclass(frozen=True)
class NamedSeries:
    key: str  # region code or device id
    name: str
    points: list[tuple[int, float]]  # (window start UTC ms, value)


@dataclass(frozen=True)
class ReadingsReport:
    region: Region
    within: Region | None
    metric: str
    unit: str
    every: int
    agg: Agg
    group_by: ReadingsGroup
    start: int
    end: int
    series: list[NamedSeries]


def default_group(region: Region) -> ReadingsGroup:
    """The region's children, or the region itself when it is a village."""
    child = CHILD_LEVEL[region.level]
    return "village" if child is None or child == "district" else child


def reading_series(ctx: Context, store: Store, *, region: str | None, metric: str, start: int, end: int,
                   every: int, agg: Agg, group_by: ReadingsGroup | None, within: Region | None = None
                   ) -> ReadingsReport:
    """Groups that have data only, sorted by key; ``within`` as for yields."""
    tz = ctx.settings.tz
    node = ctx.tree.get(region or ctx.tree.district.code)
    grouping = group_by or default_group(node)
    part = within or node
    found = store.readings(ReadingsQuery(metric, start, end, every, agg, InRegion.of(part), grouping, tz))
    series: list[NamedSeries] = []
    for key in sorted(found):
        named = ctx.tree.find(key) if grouping != "device" else None
        series.append(NamedSeries(key, named.name if named else key, found[key]))
    return ReadingsReport(node, within, metric, ctx.catalogue.metrics[metric].unit, every, agg, grouping,
                          start, end, series)
