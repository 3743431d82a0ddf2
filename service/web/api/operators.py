"""Operators' calls: ``/health``, ``/rejections``, and the OpenAPI document of them all."""

from __future__ import annotations

from flask import Response, current_app, jsonify

from ...errors import Forbidden
from ...queries.health import health_report
from ...times import format_local, now_ms
from ..auth import require
from ..metrics import live_ingest
from ..state import answer, state
from .openapi import Route, document
from .params import NoParams, RejectionsParams, parse
from .routing import AUTH, PREFIX, query_args, routes, scoped_answer
from .schemas import (
    BrokerState,
    ChannelState,
    HealthAnswer,
    IngestState,
    NotificationState,
    OpenApiAnswer,
    RejectionOut,
    RejectionsAnswer,
)


@routes.add(Route("/health", "GET", "store and broker state, ingest counters and lag (admins)", HealthAnswer,
                  params=NoParams, errors=(400, *AUTH)))
def health_get() -> Response:
    require("admin")
    parse(NoParams, query_args())
    st = state()
    r = health_report(st.store, st.broker_probe, live_ingest(current_app), now_ms(), st.ctx.settings.data_dir)
    tz = st.ctx.settings.tz
    c = r.counters
    n = r.notifications
    return answer(HealthAnswer(
        status="ok" if r.ok else "degraded",
        store=r.store,
        broker=BrokerState.model_validate(r.broker),
        ingest=IngestState(received=c.received, accepted=c.accepted, rejected=dict(sorted(c.rejected.items())),
                           workers={w: format_local(ts, tz) for w, ts in sorted(c.workers.items())},
                           lag_s=round(r.lag_ms / 1000, 1) if r.lag_ms is not None else None, live=r.live),
        notifications=NotificationState(dead_letters=n["dead_letters"], queued=n["queued"], channels={
            name: ChannelState.model_validate(ch | {"last_error_at": format_local(ch["last_error_at"], tz)
                                                    if ch["last_error_at"] is not None else None})
            for name, ch in n["channels"].items()}),
    ))


@routes.add(Route("/rejections", "GET", "the most recent rejected inputs, newest first (admins: their devices)",
                  RejectionsAnswer, params=RejectionsParams, errors=(400, *AUTH)))
def rejections_get() -> Response:
    who = require("admin")
    st = state()
    p = parse(RejectionsParams, query_args())
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
    return scoped_answer(RejectionsAnswer(scope=None if whole else who.scope, rejections=[
        RejectionOut(ts=format_local(r.ts, tz), topic=r.topic, device=r.device, reason=r.reason, detail=r.detail,
                     payload=r.payload) for r in found]))


@routes.add(Route("/openapi.json", "GET", "this API's OpenAPI 3.1 document", OpenApiAnswer, params=NoParams))
def openapi_get() -> Response:
    parse(NoParams, query_args())
    st = state()
    if st.openapi is None:
        st.openapi = document(routes.table, st.ctx.catalogue, PREFIX, "nongyun 农云 REST API", "1")
    return jsonify(st.openapi)
