"""One JSON shape of an alert for every consumer: the MQTT topic, webhooks and the REST API.

It is a superset of the API's ``AlertOut`` (id, kind, severity, region, device, message, since,
active), so ``GET /api/v1/alerts`` can return stored alerts without another mapping.
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from ..store.base import Alert
from ..times import format_local


def alert_json(a: Alert, tz: ZoneInfo) -> dict[str, Any]:
    def when(ms: int | None) -> str | None:
        return format_local(ms, tz) if ms is not None else None

    return {
        "id": str(a.id),
        "key": a.key,
        "kind": a.kind,
        "severity": a.severity,
        "region": a.village,
        "township": a.village[:9],
        "device": a.device,
        "message": a.message,
        "value": a.value,
        "threshold": a.threshold,
        "since": when(a.raised_at),
        "active": a.active,
        "cleared_at": when(a.cleared_at),
        "acked_at": when(a.acked_at),
        "acked_by": a.acked_by,
    }


def event_of(a: Alert) -> str:
    """What the latest change of the alert was, for webhooks."""
    if a.cleared_at is not None:
        return "cleared"
    if a.acked_at is not None:
        return "acknowledged"
    return "raised"
