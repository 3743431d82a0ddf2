"""``/alerts``: the stored alerts of a region, and staff acknowledging one.

Acknowledging says "someone is on it": the alert stays active until its condition recovers, the
dashboards and the retained MQTT snapshot show who took it, and a webhook gets an
``acknowledged`` event. Acknowledging twice keeps the first acknowledgement. The list answers
exactly the stored alerts the dashboards' panel shows, each with the numeric id ``/ack`` takes.
"""

from __future__ import annotations

import logging

from flask import Response, request

from ...errors import NotFound
from ...queries.alerts import acknowledge, region_alerts
from ...times import now_ms
from ..auth import require, scoped
from ..state import answer, state
from .openapi import Route
from .params import AckIn, AlertsParams, NoParams, parse, parse_body
from .present import alert_out
from .routing import AUTH, query_args, routes, scoped_answer
from .schemas import AlertOut, AlertsAnswer

log = logging.getLogger(__name__)


@routes.add(Route("/alerts", "GET", "device and agronomic alerts of a region", AlertsAnswer,
                  params=AlertsParams, errors=(400, *AUTH, 404)))
def alerts_get() -> Response:
    st = state()
    p = parse(AlertsParams, query_args())
    part = scoped(p.region)
    active = None if p.active is None else p.active == "true"
    found = region_alerts(st.ctx, st.store, part.within.code, active)
    tz = st.ctx.settings.tz
    return scoped_answer(AlertsAnswer(scope=part.narrowed, alerts=[alert_out(a, tz) for a in found]))


@routes.add(Route("/alerts/<alert_id>/ack", "POST", "acknowledge an alert (editors and admins, inside their scope)",
                  AlertOut, params=NoParams, body=AckIn, errors=(400, *AUTH, 404),
                  path_params={"alert_id": "the alert's id"}))
def alert_ack(alert_id: str) -> Response:
    # not Werkzeug's <int:...>: it turns 5,000 digits into a ValueError, hence a 500
    if not (alert_id.isascii() and alert_id.isdigit() and len(alert_id) <= 18):
        raise NotFound(f"no alert with id {alert_id[:80]!r}: alert ids are numbers (GET /alerts lists them)")
    who = require("editor")
    st = state()
    body = parse_body(AckIn, request.get_data(cache=False), optional=True)
    # a clerk at a shared office PC names who took it ({"by": "王会计"}); else the account did
    by = body.by if "by" in body.model_fields_set or not who.username else who.username
    alert = acknowledge(st.ctx, st.store, int(alert_id), by, now_ms(), who.scope)
    log.info("alert %s acknowledged as %r by account %r", alert_id, by, who.username or who.via)
    return answer(alert_out(alert, st.ctx.settings.tz))
