"""``/readings``: a metric aggregated per group and window."""

from __future__ import annotations

from flask import Response

from ...context import Context
from ...errors import BadInput
from ...queries.readings import default_group, reading_series
from ...regions import Region
from ...times import now_ms
from ..auth import scoped
from ..state import state
from .openapi import Route
from .params import ReadingsParams, format_duration, parse
from .present import readings_answer
from .routing import AUTH, query_args, routes, scoped_answer, validation_context
from .schemas import ReadingsAnswer

MAX_POINTS = 100_000  # per answer: ~3 MB of JSON; a year of hourly values for 11 groups


def _bounded(ctx: Context, region: Region, group_by: str, start: int, end: int, every: int) -> None:
    """BadInput before the store is asked, when the answer could hold more than MAX_POINTS points."""
    if group_by == "device":
        groups = len(ctx.registry.under(region.code))
    else:
        groups = len(ctx.tree.tier_around(region, group_by))
    windows = -(-(end - start) // every) + 1
    if groups * windows > MAX_POINTS:
        raise BadInput(f"up to {groups} {group_by} series × {windows} windows of every={format_duration(every)} "
                       f"is more than {MAX_POINTS:,} points: widen every, narrow the range or the region", "every")


@routes.add(Route("/readings", "GET", "a metric aggregated per group and time window", ReadingsAnswer,
                  params=ReadingsParams, errors=(400, *AUTH, 404)))
def readings_get() -> Response:
    st = state()
    p = parse(ReadingsParams, query_args(), validation_context())
    part = scoped(p.region)
    tz = st.ctx.settings.tz
    start, end = p.window(now_ms(), tz)
    _bounded(st.ctx, part.within, p.group_by or default_group(part.region), start, end, p.every)
    report = reading_series(st.ctx, st.store, region=p.region, metric=p.metric, start=start, end=end, every=p.every,
                            agg=p.agg, group_by=p.group_by, within=part.within if part.narrowed else None)
    return scoped_answer(readings_answer(report, tz))
