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
    from ..store.base import JobsStore
    from .lease import Lease
    from .notify import Publisher
    from .runner import JobRunner

__all__ = ["start_jobs"]
RETENTION_EVERY_S = 3600  # deleting by day-sized cutoffs: hourly is prompt enough


def start_jobs(ctx: Context, store: JobsStore, *, clock: Callable[[], int] = now_ms, lease: Lease | None = None,
               publisher: Publisher | None = None, start: bool = True) -> JobRunner:
    from . import alerts, health, rollups
    from .lease import FileLease
    from .notify import MqttPublisher, Notifier
    from .runner import Job, JobRunner

    cfg = ctx.alerts
    data = Path(ctx.settings.data_dir)
    notifier = Notifier(store, cfg, publisher or MqttPublisher(ctx.settings.mqtt), ctx.settings.tz)

    def station_health(now: int) -> str:
        return f"{health.check(ctx, store, cfg.station_health, now)}; {notifier.deliver(now)}"

    def agronomic_alerts(now: int) -> str:
        return f"{alerts.evaluate(ctx, store, cfg, now)}; {notifier.deliver(now)}"

    jobs = [
        Job("rollups", cfg.jobs.rollups_every_s, lambda now: rollups.refresh(store)),
        Job("station_health", cfg.jobs.health_every_s, station_health),
        Job("alerts", cfg.jobs.alerts_every_s, agronomic_alerts),
    ]
    from ..store.sqlite import SqliteStore

    if isinstance(store, SqliteStore):  # InfluxDB keeps its buckets' retention itself
        from ..retention import Retention, enforce

        retention = Retention.from_settings(ctx.settings)
        jobs.append(Job("retention", RETENTION_EVERY_S, lambda now: enforce(store, retention, now)))
    runner = JobRunner(jobs, lease or FileLease(data / "jobs.lock"), data / "jobs-state.json", clock,
                       on_shutdown=[notifier.close])
    return runner.start() if start else runner
