"""The REST API v1 (DESIGN.md "REST contract (v1)"): thin views over params → logic → answer models.

Every view is registered through ``routes.add`` with its parameter, body and answer models, which
is also what the OpenAPI document is built from.
"""

from __future__ import annotations

import json
import re
from typing import Any

from flask import Blueprint, Response, jsonify, request
from pydantic import BaseModel

from ..auth import visible
from ..errors import BadInput, Forbidden, NotFound
from ..jobs.views import alert_json
from ..regions import Region
from ..store.base import as_jobs_store
from ..times import format_local, now_ms
from . import alerts_api, devices, health, readings, yields
from .auth import inside, principal, require, scoped
from .openapi import Route, Routes, document
from .params import (
    DEVICE_ID,
    REGION_CODE,
    AlertsParams,
    DevicesParams,
    NoParams,
    ReadingsParams,
    RejectionsParams,
    YieldIn,
    YieldsParams,
    parse,
)
from .schemas import (
    AckIn,
    AlertOut,
    AlertsAnswer,
    DeviceCounts,
    DeviceOut,
    DevicesAnswer,
    HealthAnswer,
    OpenApiAnswer,
    ReadingsAnswer,
    RegionNode,
    RegionRef,
    RegionTree,
    RegionTreeNode,
    RejectionOut,
    RejectionsAnswer,
    YieldsAnswer,
    YieldStored,
)
from .state import answer, state

PREFIX = "/api/v1"
# Every data route answers 401 to anonymous callers and 403 outside their scope or role.
AUTH = (401, 403)
bp = Blueprint("api_v1", __name__, url_prefix=PREFIX)
routes = Routes(bp)


def _args() -> dict[str, list[str]]:
    return request.args.to_dict(flat=False)


def _context() -> dict[str, Any]:
    return {"catalogue": state().ctx.catalogue}


def _scoped_answer(model: BaseModel, status: int = 200) -> Response:
    """``answer`` without the ``scope`` key when nothing was narrowed, so open answers stay as they were."""
    narrowed = getattr(model, "scope", None) is not None
    resp = jsonify(model.model_dump(mode="json", by_alias=True, exclude=None if narrowed else {"scope"}))
    resp.status_code = status
    return resp


def _ref(r: Region) -> RegionRef:
    return RegionRef(code=r.code, name=r.name, level=r.level)


def _tree(r: Region, scope: str) -> RegionTreeNode:
    return RegionTreeNode(code=r.code, name=r.name, level=r.level,
                          children=[_tree(c, scope) for c in r.children if visible(scope, c.code)])


@routes.add(Route("/regions", "GET", "the region tree: district → townships → villages (the caller's part)",
                  RegionTree, params=NoParams, errors=(400, 401)))
def regions_tree() -> Response:
    parse(NoParams, _args())
    root = state().ctx.tree.district
    scope = principal().scope
    node = _tree(root, scope)
    return _scoped_answer(RegionTree(scope=scope if scope != root.code else None, code=node.code, name=node.name,
                                     level=node.level, children=node.children))


@routes.add(Route("/regions/<code>", "GET", "one region: children, device counts, latest summary", RegionNode,
                  params=NoParams, errors=(400, *AUTH, 404), path_params={"code": "region code at any tier"}))
def region_node(code: str) -> Response:
    parse(NoParams, _args())
    if not re.fullmatch(REGION_CODE, code):
        raise BadInput(f"code: {code[:20]!r} is not a 6-, 9- or 12-digit region code", "code")
    st, now = state(), now_ms()
    part = scoped(code)
    node = part.region
    found = devices.states(st.ctx, st.store, part.within.code, now)
    scope = principal().scope
    return _scoped_answer(RegionNode(
        scope=part.narrowed,
        code=node.code, name=node.name, level=node.level,
        parent=_ref(node.parent) if node.parent else None,
        children=[_ref(c) for c in node.children if visible(scope, c.code)],
        devices=DeviceCounts(total=len(found), online=sum(s.online for s in found)),
        latest=devices.summary(st.ctx, found, now),
    ))


@routes.add(Route("/yields", "GET", "yield totals of a region per township, village, crop or year", YieldsAnswer,
                  params=YieldsParams, errors=(400, *AUTH, 404)))
def yields_get() -> Response:
    st = state()
    p = parse(YieldsParams, _args(), _context())
    part = scoped(p.region)
    within = part.within if part.narrowed else None
    return _scoped_answer(yields.totals(st.ctx, st.store, p, now_ms(), within))


@routes.add(Route("/yields", "POST", "enter a harvest record (editors and admins, inside their scope)", YieldStored,
                  params=NoParams, body=YieldIn, status=201, errors=(400, *AUTH, 413),
                  description="Validated by the same rules as a grain scale's MQTT yield record (ts at most 5 "
                              "minutes ahead and at most a year old; exactly one of area_mu/area_ha and of "
                              "yield_jin/yield_kg). Writing the same (village, crop, plot, ts) again replaces the "
                              "record. The answer uses the unit keys of the request."))
def yields_post() -> Response:
    who = require("editor")
    parse(NoParams, _args())
    raw = request.get_data(cache=False)  # over MAX_CONTENT_LENGTH: 413 from Werkzeug
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise BadInput("the body must be a JSON object (UTF-8)") from None
    st = state()
    return answer(yields.enter(st.ctx, st.store, st.decoder, body, now_ms(), who.scope), 201, exclude_unset=True)


@routes.add(Route("/readings", "GET", "a metric aggregated per group and time window", ReadingsAnswer,
                  params=ReadingsParams, errors=(400, *AUTH, 404)))
def readings_get() -> Response:
    st = state()
    p = parse(ReadingsParams, _args(), _context())
    part = scoped(p.region)
    within = part.within if part.narrowed else None
    return _scoped_answer(readings.series(st.ctx, st.store, p, now_ms(), within))


@routes.add(Route("/devices", "GET", "registered devices of a region with their state", DevicesAnswer,
                  params=DevicesParams, errors=(400, *AUTH, 404)))
def devices_list() -> Response:
    st = state()
    p = parse(DevicesParams, _args())
    part = scoped(p.region)
    found = devices.states(st.ctx, st.store, part.within.code, now_ms())
    return _scoped_answer(DevicesAnswer(scope=part.narrowed,
                                        devices=[devices.device_out(s, st.ctx.settings.tz) for s in found]))


@routes.add(Route("/devices/<device_id>", "GET", "one device with its state", DeviceOut,
                  params=NoParams, errors=(400, *AUTH, 404), path_params={"device_id": "registered device id"}))
def device_one(device_id: str) -> Response:
    parse(NoParams, _args())
    if not re.fullmatch(DEVICE_ID, device_id):
        raise BadInput(f"device_id: {device_id[:70]!r} is not a device id ([A-Za-z0-9_-]{{1,64}})", "device_id")
    st = state()
    dev = st.ctx.registry.get(device_id)
    inside(dev.village)
    found = [s for s in devices.states(st.ctx, st.store, dev.village, now_ms()) if s.device.id == dev.id]
    return answer(devices.device_out(found[0], st.ctx.settings.tz))


@routes.add(Route("/alerts", "GET", "device and agronomic alerts of a region", AlertsAnswer,
                  params=AlertsParams, errors=(400, *AUTH, 404)))
def alerts_get() -> Response:
    st = state()
    p = parse(AlertsParams, _args())
    part = scoped(p.region)
    region = part.within
    found = devices.states(st.ctx, st.store, region.code, now_ms())
    out = devices.alerts(st.ctx, found)
    # Device alerts are worked out live above; agronomic ones (drought, frost, ...) are raised and
    # cleared by the jobs runner and kept by stores that hold alerts.
    jobs_store = as_jobs_store(st.store)
    if jobs_store is not None:
        for a in jobs_store.list_alerts(region.village_range()):
            if a.kind not in ("device_offline", "battery_low"):
                out.append(AlertOut.model_validate(alert_json(a, st.ctx.settings.tz)))
    if p.active is not None:
        out = [a for a in out if a.active == (p.active == "true")]
    return _scoped_answer(AlertsAnswer(scope=part.narrowed, alerts=out))


@routes.add(Route("/alerts/<alert_id>/ack", "POST", "acknowledge an alert (editors and admins, inside their scope)",
                  AlertOut, params=NoParams, body=AckIn, errors=(400, *AUTH, 404),
                  path_params={"alert_id": "the alert's id"}))
def alert_ack(alert_id: str) -> Response:
    # not Werkzeug's <int:...>: it turns 5,000 digits into a ValueError, hence a 500
    if not (alert_id.isascii() and alert_id.isdigit() and len(alert_id) <= 18):
        raise NotFound(f"no alert with id {alert_id[:20]!r}")
    who = require("editor")
    st = state()
    body = request.get_json(silent=True) if request.content_length else {}
    if who.via != "open":
        _alert_inside(int(alert_id))
        if isinstance(body, dict):
            body = {**body, "by": who.username}  # logged in: the account acknowledges, not a typed name
    return answer(AlertOut.model_validate(alerts_api.acknowledge(st, int(alert_id), body)))


def _alert_inside(alert_id: int) -> None:
    """403 when the alert is about a village outside the caller's scope (404 when there is none)."""
    st = state()
    jobs_store = as_jobs_store(st.store)
    if jobs_store is None:
        return  # acknowledge answers 404 itself
    scope = principal().scope
    mine = jobs_store.list_alerts(st.ctx.tree.get(scope).village_range(), None, 1_000_000)
    if any(a.id == alert_id for a in mine):
        return
    if any(a.id == alert_id for a in jobs_store.list_alerts(st.ctx.tree.district.village_range(), None, 1_000_000)):
        raise Forbidden(f"alert {alert_id} is about a village outside your scope {scope}")
    raise NotFound(f"no alert with id {alert_id}")


@routes.add(Route("/health", "GET", "store and broker state, ingest counters and lag (admins)", HealthAnswer,
                  params=NoParams, errors=(400, *AUTH)))
def health_get() -> Response:
    require("admin")
    parse(NoParams, _args())
    return answer(health.health(state(), now_ms()))


@routes.add(Route("/rejections", "GET", "the most recent rejected inputs, newest first (admins: their devices)",
                  RejectionsAnswer, params=RejectionsParams, errors=(400, *AUTH)))
def rejections_get() -> Response:
    who = require("admin")
    st = state()
    p = parse(RejectionsParams, _args())
    tz = st.ctx.settings.tz
    whole = who.scope == st.ctx.tree.district.code
    if whole:
        found = st.store.rejections(p.limit, p.reason, p.device)
    else:  # only devices registered inside the scope; unregistered senders are the district's business
        if p.device is not None:
            dev = st.ctx.registry.find(p.device)
            if dev is None or not dev.village.startswith(who.scope):
                raise Forbidden(f"device {p.device} is not registered inside your scope {who.scope}")
        mine = {d.id for d in st.ctx.registry.under(who.scope)}
        found = [r for r in st.store.rejections(1000, p.reason, p.device) if r.device in mine][:p.limit]
    return _scoped_answer(RejectionsAnswer(scope=None if whole else who.scope, rejections=[
        RejectionOut(ts=format_local(r.ts, tz), topic=r.topic, device=r.device, reason=r.reason, detail=r.detail,
                     payload=r.payload) for r in found]))


@routes.add(Route("/openapi.json", "GET", "this API's OpenAPI 3.1 document", OpenApiAnswer, params=NoParams))
def openapi_get() -> Response:
    parse(NoParams, _args())
    st = state()
    if st.openapi is None:
        st.openapi = document(routes.table, st.ctx.catalogue, PREFIX, "nongyun 农云 REST API", "1")
    return jsonify(st.openapi)
