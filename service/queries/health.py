"""Health: store and broker state, the ingest counters and lag, for ``/api/v1/health`` and ``/metrics``.

The web app does not talk MQTT, so "broker" means "a TCP connection to the configured broker
opens": cheap (0.5 s at most), and what a web worker can honestly know. A process that runs ingest
itself (``nongyun serve``) adds the live state only its pipeline knows. Group-robot deliveries are
read from the jobs runner's outbox file in the data folder (``jobs/outbox.py``): what waits, what
went out, the dead letters and the last error per channel, for any process sharing that folder.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..jobs.outbox import FILE as OUTBOX_FILE
from ..jobs.outbox import read_stats
from ..settings import Settings
from ..store import Store
from ..store.base import IngestCounters
from ..workers import is_api_worker

PROBE_TIMEOUT_S = 0.5
BrokerProbe = Callable[[], dict[str, Any]]


class LiveIngest(Protocol):
    def stats(self) -> Any: ...  # an IngestStats (structural, so readers never import paho)


@dataclass(frozen=True)
class HealthReport:
    ok: bool
    store: dict[str, Any]
    broker: dict[str, Any]
    counters: IngestCounters
    lag_ms: int | None  # since the newest commit of any ingest worker
    live: dict[str, Any] | None
    notifications: dict[str, Any] = field(default_factory=lambda: notification_state(None))


def tcp_probe(host: str, port: int, timeout: float = PROBE_TIMEOUT_S) -> dict[str, Any]:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return {"reachable": True, "host": host, "port": port}
    except OSError as exc:
        return {"reachable": False, "host": host, "port": port, "error": exc.strerror or str(exc)}


def broker_probe_for(settings: Settings) -> BrokerProbe:
    address = settings.mqtt

    def probe() -> dict[str, Any]:
        return tcp_probe(address.host, address.port)

    return probe


def ingest_lag_ms(counters: IngestCounters, now: int) -> int | None:
    """Staff entries through the API are not ingest commits: they do not hide a stalled ingest."""
    commits = [ts for worker, ts in counters.workers.items() if not is_api_worker(worker)]
    return max(0, now - max(commits)) if commits else None


def notification_state(data_dir: Path | None) -> dict[str, Any]:
    """Dead letters in all and per channel (``last_error_at`` in epoch ms); zeros when nothing was queued."""
    stats = read_stats(Path(data_dir) / OUTBOX_FILE) if data_dir is not None else {}
    channels = {name: {"queued": s.queued, "sent": s.sent, "dead_letters": s.dead_letters, "retries": s.retries,
                       "last_error": s.last_error, "last_error_at": s.last_error_at}
                for name, s in sorted(stats.items())}
    return {"dead_letters": sum(s.dead_letters for s in stats.values()),
            "queued": sum(s.queued for s in stats.values()), "channels": channels}


def health_report(store: Store, probe: BrokerProbe, live: Iterable[LiveIngest], now: int,
                  data_dir: Path | None = None) -> HealthReport:
    ping = store.ping()
    try:
        broker = dict(probe())
    except Exception as exc:  # a failing probe is an unreachable broker, not a failing health check
        broker = {"reachable": False, "error": f"probe failed: {exc}"}
    counters = store.counters()
    ok = bool(ping.get("ok")) and bool(broker.get("reachable"))
    state = None
    for pipeline in live:
        s = pipeline.stats()
        state = {"state": s.state, "queue_depth": s.queue_depth, "pending": s.pending,
                 "lag_s": round(s.lag_ms / 1000, 1), "store_error": s.store_error or None}
        ok = ok and s.state == "running"
        link = getattr(pipeline, "link_health", None)  # an MQTT worker: reconnect churn, a lost session
        if callable(link):
            reasons = list(link())
            state |= {"degraded": reasons, "mqtt": pipeline.state() if hasattr(pipeline, "state") else None}
            ok = ok and not reasons
    return HealthReport(ok, ping, broker, counters, ingest_lag_ms(counters, now), state, notification_state(data_dir))
