"""The scheduled jobs (issue 5): rollups, station health, agronomic alerts and their notifications.

``start_jobs(ctx, store)`` is what ``nongyun serve``, ``nongyun jobs`` and the demo call; several of
them may run in one deployment, and the lease in the data folder lets exactly one do the work
(``runner`` explains the guards). Tests build a runner with ``start=False`` and an injected clock
and call ``runner.run(name)`` instead of waiting for the scheduler.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from ..times import now_ms

if TYPE_CHECKING:
    from ..context import Context
    from ..store.base import Alert, JobsStore
    from .lease import Lease
    from .notify import Publisher, Robots
    from .runner import JobRunner

__all__ = ["start_jobs"]
RETENTION_EVERY_S = 3600  # deleting by day-sized cutoffs: hourly is prompt enough
WEEKLY_BRIEF_EVERY_S = 600  # looks whether the brief's weekday and hour came; the push lands within 10 min


def start_jobs(ctx: Context, store: JobsStore, *, clock: Callable[[], int] = now_ms, lease: Lease | None = None,
               publisher: Publisher | None = None, start: bool = True) -> JobRunner:
    from . import alerts, health, rollups
    from .lease import FileLease
    from .notify import MqttPublisher, Notifier
    from .runner import Job, JobRunner

    cfg = ctx.alerts
    data = Path(ctx.settings.data_dir)
    robots = _robots(ctx) if cfg.channels else None
    notifier = Notifier(store, cfg, publisher or MqttPublisher(ctx.settings.mqtt), ctx.settings.tz, robots)

    def station_health(now: int) -> str:
        return f"{health.check(ctx, store, cfg.station_health, now)}; {notifier.deliver(now)}"

    def agronomic_alerts(now: int) -> str:
        return f"{alerts.evaluate(ctx, store, cfg, now)}; {notifier.deliver(now)}"

    jobs = [
        Job("rollups", cfg.jobs.rollups_every_s, lambda now: rollups.refresh(store)),
        Job("station_health", cfg.jobs.health_every_s, station_health),
        Job("alerts", cfg.jobs.alerts_every_s, agronomic_alerts),
    ]
    if robots is not None and any(c.weekly_brief for c in cfg.channels):
        jobs.append(Job("weekly_brief", WEEKLY_BRIEF_EVERY_S, robots.queue_briefs))
    from ..store.sqlite import SqliteStore

    if isinstance(store, SqliteStore):  # InfluxDB keeps its buckets' retention itself
        from ..retention import Retention, enforce

        retention = Retention.from_settings(ctx.settings)
        jobs.append(Job("retention", RETENTION_EVERY_S, lambda now: enforce(store, retention, now)))
    runner = JobRunner(jobs, lease or FileLease(data / "jobs.lock"), data / "jobs-state.json", clock,
                       on_shutdown=[notifier.close])
    return runner.start() if start else runner


def _robots(ctx: Context) -> Robots:
    """The group robots of config/alerts.toml, with names and units from the region tree and catalogue."""
    from .notify import Robots
    from .outbox import Outbox, Policy
    from .robots import Place

    n = ctx.alerts.notify
    outbox = Outbox.in_dir(ctx.settings.data_dir, Policy(n.attempts, n.backoff_s, n.backoff_max_s, n.queue_max))
    tree, rules = ctx.tree, {r.id: r for r in ctx.alerts.rules}

    def place(code: str) -> Place:
        town, village = tree.find(code[:9]), tree.find(code) if len(code) == 12 else None  # [:9] of a district: it
        return Place(town.name if town else code, village.name if village else "")

    def unit(a: Alert) -> str | None:
        if a.kind == "battery_low":
            return "V"
        rule = rules.get(a.key.split(":", 1)[0])
        metric = ctx.catalogue.metrics.get(rule.metric) if rule else None
        return metric.unit if metric and metric.unit else None

    return Robots(ctx.alerts, outbox, ctx.settings.tz, place=place, unit=unit,
                  public_url=ctx.settings.values.web_public_url)
