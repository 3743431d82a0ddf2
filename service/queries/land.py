"""Plots and area groups of a region (``GET /plots``, ``GET /area-groups``, dashboard cards).

Areas stay in hectares here; the web layer turns them into 亩 or keeps SI. A region names a code of
any tier (a plot belongs to the region its village lies in); ``within`` is the caller's scope when
the region asked for lies above it, as for yields.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..context import Context
from ..errors import BadInput
from ..land import AreaGroup, Plot
from ..regions import Region


@dataclass(frozen=True)
class PlotsReport:
    region: Region
    within: Region | None
    group: str | None
    plots: list[Plot]


@dataclass(frozen=True)
class AreaGroupSummary:
    group: AreaGroup
    plots: int  # plots of the group inside the region
    area_ha: float


@dataclass(frozen=True)
class AreaGroupsReport:
    region: Region
    within: Region | None
    groups: list[AreaGroupSummary]


def plots_in(ctx: Context, *, region: str | None, group: str | None = None,
             within: Region | None = None) -> PlotsReport:
    node = ctx.tree.get(region or ctx.tree.district.code)
    if group is not None and ctx.land.group(group) is None:
        raise BadInput(f"group: {group[:64]!r} is not an area group", "group")
    part = within or node
    return PlotsReport(node, within, group, ctx.land.plots(part.code, group))


def area_groups_in(ctx: Context, *, region: str | None, within: Region | None = None) -> AreaGroupsReport:
    """Every area group, with the count and area of its plots inside the region (0 when none)."""
    node = ctx.tree.get(region or ctx.tree.district.code)
    part = within or node
    out = []
    for g in ctx.land.groups():
        plots = ctx.land.plots(part.code, g.id)
        out.append(AreaGroupSummary(g, len(plots), sum(p.area_ha for p in plots)))
    return AreaGroupsReport(node, within, out)
