"""``/yields``: totals of a region, and harvest records entered by staff."""

from __future__ import annotations

from typing import Any

from flask import Response, request

from ...harvest_records import Actor, enter
from ...queries.yields import yield_totals
from ...times import format_local, now_ms
from ...units import ha_to_mu, kg_to_jin
from ..auth import require, scoped
from ..figures import half_up
from ..state import answer, state
from .openapi import Route
from .params import NoParams, YieldIn, YieldsParams, parse, parse_body
from .present import yields_answer
from .routing import AUTH, query_args, routes, scoped_answer, validation_context
from .schemas import YieldsAnswer, YieldStored


@routes.add(Route("/yields", "GET", "yield totals of a region per township, village, crop, year or area group",
                  YieldsAnswer, params=YieldsParams, errors=(400, *AUTH, 404)))
def yields_get() -> Response:
    st = state()
    p = parse(YieldsParams, query_args(), validation_context())
    part = scoped(p.region)
    report = yield_totals(st.ctx, st.store, region=p.region, year=p.year, crop=p.crop, group_by=p.group_by,
                          now=now_ms(), within=part.within if part.narrowed else None, area_group=p.area_group,
                          status=p.status)
    return scoped_answer(yields_answer(report, p.unit))


@routes.add(Route("/yields", "POST", "enter a harvest record (editors and admins, inside their scope)", YieldStored,
                  params=NoParams, body=YieldIn, status=201, errors=(400, *AUTH, 409, 413),
                  description="Validated by the same rules as a grain scale's MQTT yield record (ts at most 5 "
                              "minutes ahead and at most a year old; exactly one of area_mu/area_ha and of "
                              "yield_jin/yield_kg). Every entry is a new record with its own id; one identical "
                              "to a record that is not void (same village, plot, ts, crop, area and yield) is "
                              "refused with 409, code duplicate and the existing record's id. A rejection of the "
                              "record carries the MQTT reason as its code (unknown_plot, implausible_yield, ...). "
                              "The answer uses the unit keys of the request."))
def yields_post() -> Response:
    who = require("editor")
    parse(NoParams, query_args())
    entry = parse_body(YieldIn, request.get_data(cache=False))  # over MAX_CONTENT_LENGTH: 413 from Werkzeug
    body = entry.model_dump(exclude_unset=True)
    st = state()
    rec = enter(st.ctx, st.store, st.decoder, body, now_ms(), Actor(who.username, who.role, who.scope))
    out: dict[str, Any] = {"village": rec.village, "township": rec.village[:9],
                           "ts": format_local(rec.ts, st.ctx.settings.tz), "crop": rec.crop, "plot": rec.plot,
                           "moisture_pct": rec.moisture_pct, "source": "api", "id": rec.record_id,
                           "status": rec.status}
    if "area_mu" in body:
        out["area_mu"] = half_up(ha_to_mu(rec.area_ha))
    else:
        out["area_ha"] = half_up(rec.area_ha)
    if "yield_jin" in body:
        out["yield_jin"] = half_up(kg_to_jin(rec.yield_kg))
    else:
        out["yield_kg"] = half_up(rec.yield_kg)
    return answer(YieldStored.model_validate(out), 201, exclude_unset=True)
