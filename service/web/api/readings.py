"""``/readings``: a metric aggregated per group and window."""

from __future__ import annotations

from flask import Response

from ...queries.readings import reading_series
from ...times import now_ms
from ..auth import scoped
from ..state import state
from .openapi import Route
from .params import ReadingsParams, parse
from .present import readings_answer
from .routing import AUTH, query_args, routes, scoped_answer, validation_context
from .schemas import ReadingsAnswer


@routes.add(Route("/readings", "GET", "a metric aggregated per group and time window", ReadingsAnswer,
                  params=ReadingsParams, errors=(400, *AUTH, 404)))
def readings_get() -> Response:
    st = state()
    p = parse(ReadingsParams, query_args(), validation_context())
    part = scoped(p.region)
    tz = st.ctx.settings.tz
    start, end = p.window(now_ms(), tz)
    report = reading_series(st.ctx, st.store, region=p.region, metric=p.metric, start=start, end=end, every=p.every,
                            agg=p.agg, group_by=p.group_by, within=part.within if part.narrowed else None)
    return scoped_answer(readings_answer(report, tz))
