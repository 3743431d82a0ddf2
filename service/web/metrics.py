"""``GET /metrics``: the ingest figures of ``/api/v1/health`` in Prometheus text format, for scraping.

Why a collector read at scrape time rather than counters bumped in code: the totals that matter
(received, accepted, rejected by reason, each worker's last commit) already live in the store,
summed over every ingest worker, and survive restarts; a web-only process (gunicorn) can serve
them without running ingest. A process that runs ingest itself (``nongyun serve``) adds the live
figures only its pipeline knows — queue depth, messages pending, the age of the oldest one, and the
store write latency histogram — with ``register_ingest(app, pipeline)``.

Each app has its own ``CollectorRegistry``: several apps in one process (tests, gunicorn's preload)
never share or double-register metrics.

Who may scrape: what ``/api/v1/health`` shows, an admin (README "Operating it"). Prometheus sends an
admin's API token (``authorization: {type: Bearer, credentials_file: ...}`` in its scrape config);
without one the answer is a 401 with ``WWW-Authenticate: Bearer``, never the login page a browser
would be sent to, and another role is a 403. With ``web.auth = off`` everyone is the admin, so the
operator keeps the listen address (``web.http``, 127.0.0.1 by default) private instead.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Protocol

from flask import Blueprint, Flask, Response, current_app, g
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from ..auth import Principal
from ..queries.health import LiveIngest, ingest_lag_ms
from ..records import REASONS
from ..times import now_ms
from .errors import error_response
from .state import WebState

EXTENSION = "nongyun.metrics"

bp = Blueprint("metrics", __name__)


class LiveStats(Protocol):
    """What ``/metrics`` reads from an ``IngestStats`` (structural, so the web never imports paho)."""

    worker: str
    state: str
    queue_depth: int
    pending: int
    lag_ms: int
    writes: int
    write_seconds: float
    write_buckets: tuple[int, ...]
    write_bounds: tuple[float, ...]


class NongyunCollector(Collector):
    """Reads the store's counters, and the live stats of any registered in-process pipeline."""

    def __init__(self, web: WebState, clock: Callable[[], int] = now_ms) -> None:
        self.web = web
        self.clock = clock
        self.live: list[LiveIngest] = []

    def collect(self) -> Iterator[Metric]:
        yield from self._store()
        for source in self.live:
            yield from _live(source.stats())

    def _store(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("nongyun_store_up", "1 when the store answered this scrape's counter query.")
        try:
            counters = self.web.store.counters()
        except Exception:  # a scrape reports the store down; it never fails
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield CounterMetricFamily("nongyun_ingest_messages_received", "MQTT messages received, all workers.",
                                  value=counters.received)
        yield CounterMetricFamily("nongyun_ingest_records_accepted", "Records stored, all workers.",
                                  value=counters.accepted)
        rejected = CounterMetricFamily("nongyun_ingest_records_rejected",
                                       "Records rejected (recorded, not stored), by reason.", labels=["reason"])
        for reason in sorted(set(REASONS) | set(counters.rejected)):
            rejected.add_metric([reason], counters.rejected.get(reason, 0))
        yield rejected
        last = GaugeMetricFamily("nongyun_ingest_last_commit_timestamp_seconds",
                                 "Unix time of each worker's last commit.", labels=["worker"])
        for worker, ms in sorted(counters.workers.items()):
            last.add_metric([worker], ms / 1000)
        yield last
        lag = ingest_lag_ms(counters, self.clock())
        if lag is not None:
            yield GaugeMetricFamily(
                "nongyun_ingest_seconds_since_commit",
                "Seconds since the newest ingest commit of any worker (the health endpoint's lag_s).",
                value=lag / 1000)


def _live(s: LiveStats) -> Iterator[Metric]:
    labels = ["worker"]
    for name, doc, value in (
        ("nongyun_ingest_queue_depth", "Messages received and waiting for the writer.", s.queue_depth),
        ("nongyun_ingest_pending_messages", "Messages received and not yet committed.", s.pending),
        ("nongyun_ingest_lag_seconds", "Age of the oldest message received and not yet committed; 0 when none.",
         s.lag_ms / 1000),
    ):
        g = GaugeMetricFamily(name, doc, labels=labels)
        g.add_metric([s.worker], value)
        yield g
    state = GaugeMetricFamily("nongyun_ingest_state", "1 for the pipeline's current state.",
                              labels=["worker", "state"])
    for name in ("running", "store_unavailable", "store_error", "stopping", "stopped"):
        state.add_metric([s.worker, name], 1 if s.state == name else 0)
    yield state
    cumulative, buckets = 0, []
    for bound, count in zip((*s.write_bounds, math.inf), s.write_buckets, strict=False):
        cumulative += count
        buckets.append(("+Inf" if bound == math.inf else repr(bound), cumulative))
    if not buckets:
        buckets = [("+Inf", 0)]
    h = HistogramMetricFamily("nongyun_store_write_seconds", "Duration of each successful store commit.",
                              labels=labels)
    h.add_metric([s.worker], buckets, sum_value=s.write_seconds)
    yield h


def _collector(app: Flask) -> NongyunCollector:
    found = app.extensions.get(EXTENSION)
    if found is None:
        web = app.extensions["nongyun"]
        assert isinstance(web, WebState), "create_app registers the metrics blueprint after its state"
        registry = CollectorRegistry(auto_describe=False)
        found = (registry, NongyunCollector(web))
        registry.register(found[1])
        app.extensions[EXTENSION] = found
    collector = found[1]
    assert isinstance(collector, NongyunCollector)
    return collector


def live_ingest(app: Flask) -> list[LiveIngest]:
    """The in-process pipelines registered with this app (none in a web-only process)."""
    return list(_collector(app).live)


def register_ingest(app: Flask, pipeline: LiveIngest) -> None:
    """Expose an in-process ingest pipeline's live figures (``nongyun serve``); call once per pipeline."""
    _collector(app).live.append(pipeline)


def _refused() -> Response | None:
    """None for an admin; else the 401 (nobody) or 403 (another role) a scraper can act on. The
    route is public to the login redirect (auth.PUBLIC) so that this check, not a redirect, answers."""
    who = g.get("principal")
    if not isinstance(who, Principal):
        return error_response(401, "/metrics needs an admin's API token (Authorization: Bearer nyt_...)",
                              WWW_Authenticate='Bearer realm="nongyun"')
    if not who.may("admin"):
        return error_response(403, f"/metrics needs the admin role; {who.username or 'you'} are {who.role}")
    return None


@bp.get("/metrics")
def metrics() -> Response:
    refused = _refused()
    if refused is not None:
        return refused
    _collector(current_app)
    registry, _ = current_app.extensions[EXTENSION]
    return Response(generate_latest(registry), mimetype=None, content_type=CONTENT_TYPE_LATEST)
