"""``POST /api/v1/alerts/<id>/ack``: staff acknowledge an alert (issue 5).

Acknowledging says "someone is on it": the alert stays active until its condition recovers, the
dashboards and the retained MQTT snapshot show who took it, and a webhook gets an
``acknowledged`` event. Acknowledging twice keeps the first acknowledgement (idempotent).
Body (optional): ``{"by": "name of the staff member"}``.
"""

from __future__ import annotations

from typing import Any

from ..errors import BadInput, NotFound
from ..jobs.views import alert_json
from ..store.base import as_jobs_store
from ..times import now_ms
from .state import WebState

MAX_BY = 64


def acknowledge(st: WebState, alert_id: int, body: Any) -> dict[str, Any]:
    """The alert after acknowledgement, as JSON; registered as a documented route in ``api``."""
    if body is None or not isinstance(body, dict):
        raise BadInput("body: must be a JSON object like {\"by\": \"王会计\"}", "body")
    unknown = set(body) - {"by"}
    if unknown:
        raise BadInput(f"{sorted(unknown)[0]}: unknown field (only 'by')", sorted(unknown)[0])
    by = body.get("by", "staff")
    if not isinstance(by, str) or not 0 < len(by.strip()) <= MAX_BY:
        raise BadInput(f"by: a name of 1 to {MAX_BY} characters", "by")
    store = as_jobs_store(st.store)
    if store is None:
        raise NotFound(f"this store backend ({st.store.name}) keeps no alerts")
    alert = store.ack_alert(alert_id, by.strip(), now_ms())
    return alert_json(alert, st.ctx.settings.tz)
