"""``/plots`` and ``/area-groups``: the land of a region (DESIGN.md "Land: plots and area groups")."""

from __future__ import annotations

from flask import Response

from ...queries.land import area_groups_in, plots_in
from ..auth import scoped
from ..state import state
from .openapi import Route
from .params import AreaGroupsParams, PlotsParams, parse
from .present import area_groups_answer, plots_answer
from .routing import AUTH, query_args, routes, scoped_answer
from .schemas import AreaGroupsAnswer, PlotsAnswer


@routes.add(Route("/plots", "GET", "the plots of a region, optionally of one area group", PlotsAnswer,
                  params=PlotsParams, errors=(400, *AUTH, 404)))
def plots_get() -> Response:
    p = parse(PlotsParams, query_args())
    part = scoped(p.region)
    report = plots_in(state().ctx, region=p.region, group=p.group, within=part.within if part.narrowed else None)
    return scoped_answer(plots_answer(report, p.unit))


@routes.add(Route("/area-groups", "GET", "the area groups with their plots and area inside a region",
                  AreaGroupsAnswer, params=AreaGroupsParams, errors=(400, *AUTH, 404)))
def area_groups_get() -> Response:
    p = parse(AreaGroupsParams, query_args())
    part = scoped(p.region)
    report = area_groups_in(state().ctx, region=p.region, within=part.within if part.narrowed else None)
    return scoped_answer(area_groups_answer(report, p.unit))
