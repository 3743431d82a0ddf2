"""The village page's plot table: each registered plot of the village with this season's harvest.

Rendered on the server from one per-plot query, so the table is there without JavaScript and a
plot that has not been harvested yet shows as a row of dashes, not as a missing row.
"""

from __future__ import annotations

from typing import Any

from ...context import Context
from ...regions import Region
from ...store import Store
from ...store.base import InRegion, YieldsQuery
from ...times import year_bounds
from ...units import area_out, per_area, yield_out
from ..figures import half_up, half_up_or_none


def village_plots(ctx: Context, store: Store, village: Region, year: int) -> list[dict[str, Any]]:
    """[{id, name, area, groups, records, harvested, yield, yield_per_area}] in 亩/斤, by plot id."""
    plots = ctx.land.in_village(village.code)
    if not plots:
        return []
    start, end = year_bounds(year, ctx.settings.tz)
    found = {t.key: t for t in store.yields(YieldsQuery(InRegion.of(village), start, end, "plot", ctx.settings.tz))}
    rows = []
    for p in plots:
        t = found.get(p.id)
        groups = [g.name for g in map(ctx.land.group, p.groups) if g is not None]
        rows.append({
            "id": p.id, "name": p.name, "area": half_up(area_out(p.area_ha, "cn")), "groups": groups,
            "records": t.records if t else 0,
            "harvested": half_up(area_out(t.area_ha, "cn")) if t else None,
            "yield": half_up(yield_out(t.yield_kg, "cn")) if t else None,
            "yield_per_area": half_up_or_none(per_area(t.yield_kg, t.area_ha, "cn")) if t else None,
        })
    return rows
