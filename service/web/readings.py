"""Reading series per township, village or device, aggregated in windows aligned to local time."""

from __future__ import annotations

from typing import Literal

from ..context import Context
from ..regions import CHILD_LEVEL, Region
from ..store import Store
from ..store.base import ReadingsQuery
from ..times import format_local
from .params import ReadingsParams, format_duration
from .schemas import ReadingsAnswer, SeriesOut

VALUE_DECIMALS = 3
ReadingsGroup = Literal["township", "village", "device"]


def series(ctx: Context, store: Store, p: ReadingsParams, now: int, within: Region | None = None) -> ReadingsAnswer:
    """``within``: the caller's scope when the region asked for lies above it; only its devices count."""
    tz = ctx.settings.tz
    region = ctx.tree.get(p.region or ctx.tree.district.code)
    start, end = p.window(now, tz)
    child = CHILD_LEVEL[region.level]
    group_by: ReadingsGroup = p.group_by or ("village" if child is None or child == "district" else child)
    part = within or region
    found = store.readings(ReadingsQuery(p.metric, start, end, p.every, p.agg, part.village_range(), group_by, tz))
    out: list[SeriesOut] = []
    for key in sorted(found):
        node = ctx.tree.find(key) if group_by != "device" else None
        out.append(SeriesOut(key=key, name=node.name if node else key,
                             points=[(format_local(t, tz), round(v, VALUE_DECIMALS)) for t, v in found[key]]))
    return ReadingsAnswer(scope=within.code if within is not None else None, region=region.code, metric=p.metric,
                          unit=ctx.catalogue.metrics[p.metric].unit, every=format_duration(p.every), agg=p.agg,
                          group_by=group_by, start=format_local(start, tz), end=format_local(end, tz), series=out)
