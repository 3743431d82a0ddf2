"""``GET /metrics``: the store's ingest totals for any web process, live pipeline figures when registered."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from flask import Flask
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families

from service.context import Context, build
from service.ingest import IngestPipeline
from service.payloads import PayloadDecoder
from service.records import REASONS, Batch, Reading, Rejection
from service.store.sqlite import SqliteStore
from service.times import now_ms
from service.web import create_app
from service.web.metrics import bp as metrics_bp
from service.web.metrics import register_ingest
from service.workers import API_WORKER_PREFIX

STATION, VILLAGE = "qh-st-101203-1", "211204101203"
TOPIC = f"nongyun/v1/{STATION}/telemetry"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(tmp_path / "metrics.sqlite3")
    yield s
    s.close()


def make_app(ctx: Context, store: SqliteStore) -> Flask:
    """The web app without logins (how a scraper authenticates is the auth module's business)."""
    app = create_app(build(ctx.settings.with_overrides(web_auth="off")), store)
    if "metrics" not in app.blueprints:  # until create_app registers it itself
        app.register_blueprint(metrics_bp)
    return app


def scrape(app: Flask) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    resp = app.test_client().get("/metrics")
    assert resp.status_code == 200
    assert resp.content_type == CONTENT_TYPE_LATEST and resp.mimetype == "text/plain"
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(resp.get_data(as_text=True)) for s in family.samples}


def rejection(reason: str) -> Rejection:
    return Rejection(now_ms(), TOPIC, STATION, reason, "detail", "{}")


def test_totals_come_from_the_store_summed_over_workers_for_a_web_only_process(
        ctx: Context, store: SqliteStore) -> None:
    t = now_ms() - 60_000
    store.write(Batch(readings=[Reading(STATION, VILLAGE, t, {"air_temp": 3.0})],
                      rejections=[rejection("bad_json"), rejection("bad_json")], messages=3, worker="w1"))
    store.write(Batch(readings=[Reading(STATION, VILLAGE, t + 1, {"air_temp": 4.0}),
                                Reading(STATION, VILLAGE, t + 2, {"air_temp": 5.0})],
                      rejections=[rejection("out_of_range")], messages=2, worker="w2"))
    store.write(Batch(messages=0, worker=f"{API_WORKER_PREFIX}-1"))
    m = scrape(make_app(ctx, store))
    assert m[("nongyun_store_up", ())] == 1
    assert m[("nongyun_ingest_messages_received_total", ())] == 5
    assert m[("nongyun_ingest_records_accepted_total", ())] == 3
    assert m[("nongyun_ingest_records_rejected_total", (("reason", "bad_json"),))] == 2
    assert m[("nongyun_ingest_records_rejected_total", (("reason", "out_of_range"),))] == 1
    assert all(("nongyun_ingest_records_rejected_total", (("reason", r),)) in m for r in REASONS)  # zeros too
    commits = {labels[0][1]: v for (name, labels), v in m.items()
               if name == "nongyun_ingest_last_commit_timestamp_seconds"}
    assert set(commits) == {"w1", "w2", f"{API_WORKER_PREFIX}-1"}
    assert abs(commits["w1"] - now_ms() / 1000) < 60
    assert 0 <= m[("nongyun_ingest_seconds_since_commit", ())] < 60
    assert not any(name.startswith("nongyun_ingest_queue_depth") for name, _ in m)  # no live pipeline here


def test_a_registered_pipeline_adds_queue_depth_lag_and_the_write_latency_histogram(
        ctx: Context, store: SqliteStore) -> None:
    clock = [now_ms()]
    acked: list[int] = []
    pipeline = IngestPipeline(PayloadDecoder(ctx.registry, ctx.catalogue), store, worker="live",
                              clock=lambda: clock[0], ack=acked.extend)
    app = make_app(ctx, store)
    register_ingest(app, pipeline)
    for i in range(3):
        assert pipeline.submit(TOPIC, orjson.dumps({"ts": clock[0] - 60_000 - i, "readings": {"air_temp": 1.0}}), i)
    clock[0] += 2_500  # the oldest message has waited 2.5 s; the writer has not started
    m = scrape(app)
    live = (("worker", "live"),)
    assert m[("nongyun_ingest_queue_depth", live)] == 3
    assert m[("nongyun_ingest_pending_messages", live)] == 3
    assert m[("nongyun_ingest_lag_seconds", live)] == 2.5
    assert m[("nongyun_store_write_seconds_count", live)] == 0
    pipeline.start()
    assert pipeline.block_till_done(10)
    m = scrape(app)
    pipeline.stop()
    assert acked == [0, 1, 2]
    assert m[("nongyun_ingest_queue_depth", live)] == 0
    assert m[("nongyun_ingest_lag_seconds", live)] == 0
    assert m[("nongyun_ingest_state", (("state", "running"), ("worker", "live")))] == 1
    writes = m[("nongyun_store_write_seconds_count", live)]
    assert writes >= 1
    assert m[("nongyun_store_write_seconds_bucket", (("le", "+Inf"), ("worker", "live")))] == writes
    assert 0 < m[("nongyun_store_write_seconds_sum", live)] < 10
    assert m[("nongyun_ingest_records_accepted_total", ())] == 3  # and the store saw it too


def test_a_broken_store_file_is_reported_not_raised(ctx: Context, tmp_path: Path) -> None:
    path = tmp_path / "broken.sqlite3"
    store = SqliteStore(path)
    store.close()
    for extra in ("-wal", "-shm"):
        Path(f"{path}{extra}").unlink(missing_ok=True)
    path.write_bytes(b"this is not a database" * 100)
    m = scrape(make_app(ctx, store))
    assert m[("nongyun_store_up", ())] == 0
    assert ("nongyun_ingest_messages_received_total", ()) not in m
