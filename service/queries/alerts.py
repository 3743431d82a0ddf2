"""Alerts as everyone sees them: the ones the jobs runner stored, with their numeric ids.

The API, the dashboards, webhooks and the retained MQTT topic all show the same stored alerts,
raised and cleared by the jobs runner with the thresholds and hysteresis of config/alerts.toml
(device alerts by its station-health job, agronomic ones by its rules). Nothing here derives an
alert of its own, so an id the page lists is an id ``/ack`` accepts.
"""

from __future__ import annotations

from ..context import Context
from ..errors import Forbidden, NotFound
from ..store import Store
from ..store.base import Alert, InRegion, as_jobs_store

LIST_LIMIT = 500


def region_alerts(ctx: Context, store: Store, region_code: str, active: bool | None = None) -> list[Alert]:
    """Alerts about villages of the region, newest raised first; a store without alerts has none."""
    jobs_store = as_jobs_store(store)
    if jobs_store is None:
        return []
    return jobs_store.list_alerts(InRegion.of(ctx.tree.get(region_code)), active, LIST_LIMIT)


def find_alert(ctx: Context, store: Store, alert_id: int, scope: str) -> Alert:
    """The alert, if it is about a village inside ``scope``: Forbidden outside it, NotFound if none."""
    jobs_store = as_jobs_store(store)
    if jobs_store is None:
        raise NotFound(f"this store backend ({store.name}) keeps no alerts")
    found = jobs_store.get_alert(alert_id)
    if found is None:
        raise NotFound(f"no alert with id {alert_id}")
    if not found.village.startswith(scope):
        raise Forbidden(f"alert {alert_id} is about a village outside your scope {scope}")
    return found


def acknowledge(ctx: Context, store: Store, alert_id: int, by: str, now: int, scope: str) -> Alert:
    find_alert(ctx, store, alert_id, scope)
    jobs_store = as_jobs_store(store)
    assert jobs_store is not None  # find_alert answered NotFound otherwise
    return jobs_store.ack_alert(alert_id, by, now)
