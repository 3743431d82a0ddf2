"""``/api/v1/health``: store and broker state, ingest counters and lag, for operators and probes.

The web app does not talk MQTT, so "broker" means "a TCP connection to the configured broker
opens": cheap (0.5 s at most), and what a web worker can honestly know. The answer is 200 with
``status: degraded`` when something is wrong, so the body is always readable.
"""

from __future__ import annotations

import os
import socket
from typing import Any

from flask import current_app

from ..settings import Settings
from ..times import format_local
from .schemas import BrokerState, HealthAnswer, IngestState
from .state import BrokerProbe, WebState

PROBE_TIMEOUT_S = 0.5
# The counters' worker id of records entered through POST /yields: one per process, because the
# InfluxDB backend keeps cumulative counters per worker and gunicorn runs several web processes.
API_WORKER_PREFIX = "web-api"
API_WORKER = f"{API_WORKER_PREFIX}-{os.getpid()}"


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


def health(st: WebState, now: int) -> HealthAnswer:
    tz = st.ctx.settings.tz
    ping = st.store.ping()
    try:
        broker = BrokerState.model_validate(st.broker_probe())
    except Exception as exc:  # a failing probe is an unreachable broker, not a failing health check
        broker = BrokerState(reachable=False, error=f"probe failed: {exc}")
    counters = st.store.counters()
    ingest_commits = [ts for worker, ts in counters.workers.items() if not worker.startswith(API_WORKER_PREFIX)]
    lag = round(max(0, now - max(ingest_commits)) / 1000, 1) if ingest_commits else None
    ok = bool(ping.get("ok")) and broker.reachable
    from .metrics import live_ingest  # metrics reads this module's worker names: import here, not above

    live = None
    for pipeline in live_ingest(current_app):  # nongyun serve: the ingest running in this process
        s = pipeline.stats()
        live = {"state": s.state, "queue_depth": s.queue_depth, "pending": s.pending,
                "lag_s": round(s.lag_ms / 1000, 1), "store_error": s.store_error or None}
        ok = ok and s.state == "running"
    return HealthAnswer(
        status="ok" if ok else "degraded",
        store=ping,
        broker=broker,
        ingest=IngestState(
            received=counters.received,
            accepted=counters.accepted,
            rejected=dict(sorted(counters.rejected.items())),
            workers={w: format_local(ts, tz) for w, ts in sorted(counters.workers.items())},
            lag_s=lag,
            live=live,
        ),
    )
