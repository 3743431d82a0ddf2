"""Agronomic alerts with a controlled clock: raised once, cleared on recovery, never flapping;
acknowledged by staff; published retained over MQTT and POSTed to webhooks."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from pytest_httpserver import HTTPServer

from service.context import Context
from service.errors import SettingsError
from service.jobs import start_jobs
from service.jobs.config import AlertsConfig, Webhook
from service.jobs.notify import MqttPublisher, Notifier
from service.jobs.runner import JobRunner
from service.records import Batch, Reading
from service.settings import MqttAddress
from service.store.base import Alert, InRegion
from service.store.sqlite import SqliteStore
from service.times import parse_rfc3339
from service.web import create_app
from tests.brokers import Mosquitto
from tests.jobs_support import Clock, Recorder

HOUR = 3_600_000
STATION, VILLAGE = "qh-st-101203-1", "211204101203"  # 张相镇; corn by default, in season in June
T0 = parse_rfc3339("2026-06-10T00:00:00+08:00")
DISTRICT = InRegion("district", "211204")


@pytest.fixture
def store(ctx: Context) -> Iterator[SqliteStore]:
    s = SqliteStore.from_settings(ctx.settings)
    yield s
    s.close()


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
def runner(ctx: Context, store: SqliteStore, clock: Clock) -> Iterator[JobRunner]:
    r = start_jobs(ctx, store, clock=clock, publisher=Recorder(), start=False)
    yield r
    r.shutdown()


def hourly(store: SqliteStore, start_h: int, values: list[float], metric: str = "soil_moisture",
           device: str = STATION, village: str = VILLAGE) -> None:
    store.write(Batch(readings=[Reading(device, village, T0 + (start_h + i) * HOUR + 5 * 60_000, {metric: v})
                                for i, v in enumerate(values)]))


def step_hours(runner: JobRunner, clock: Clock, store: SqliteStore, hours: range) -> list[tuple[int, int, int]]:
    """Run rollups and alerts at 40 minutes past each hour; (hour, alerts in all, active) after each."""
    seen = []
    for h in hours:
        clock.now = T0 + h * HOUR + 40 * 60_000
        assert runner.run("rollups").outcome == "ok"
        assert runner.run("alerts").outcome == "ok"
        every = store.list_alerts(DISTRICT)
        seen.append((h, len(every), sum(a.active for a in every)))
    return seen


def test_a_drought_raises_exactly_one_alert_and_clears_it(runner: JobRunner, clock: Clock,
                                                          store: SqliteStore) -> None:
    hourly(store, 0, [10.0] * 60 + [25.0] * 20)  # 60 dry hours, then rain
    seen = step_hours(runner, clock, store, range(80))
    raised = [h for h, total, active in seen if active == 1]
    # raised when 48 hours of dry values are in (hours 0..47), cleared after 6 wet hours (60..65)
    assert raised == list(range(47, 65))
    assert all(total == (1 if h >= 47 else 0) for h, total, _ in seen)
    [alert] = store.list_alerts(DISTRICT)
    assert (alert.key, alert.kind, alert.village, alert.device) == (f"drought:{VILLAGE}", "drought", VILLAGE, None)
    assert alert.raised_at == T0 + 5 * 60_000 - 5 * 60_000  # the start of the first dry hour
    assert alert.cleared_at == T0 + 65 * HOUR + 40 * 60_000
    assert "干" in alert.message or "旱" in alert.message


def test_a_value_hovering_at_the_threshold_does_not_flap(runner: JobRunner, clock: Clock,
                                                         store: SqliteStore) -> None:
    # around the raise threshold (15): never 48 dry hours in a row, so never raised
    hourly(store, 0, [14.9, 15.1] * 40)
    assert {active for _, _, active in step_hours(runner, clock, store, range(80))} == {0}
    # dry for 50 hours, then hovering around the clear threshold (18): raised once, never cleared
    hourly(store, 80, [10.0] * 50 + [17.9, 18.1] * 24)
    seen = step_hours(runner, clock, store, range(80, 178))
    assert [total for _, total, _ in seen][-1] == 1
    assert next(h for h, _, active in seen if active) == 80 + 47
    assert all(active == 1 for h, _, active in seen if h >= 80 + 47)


def test_frost_raises_at_once_and_does_not_repeat_while_it_hovers(runner: JobRunner, clock: Clock,
                                                                  store: SqliteStore) -> None:
    hourly(store, 0, [3.0, -0.5, 0.5, -0.2, 0.4, 1.0, 3.0, 3.0, 3.0, 4.0], metric="air_temp")
    seen = step_hours(runner, clock, store, range(10))
    assert [active for _, _, active in seen] == [0, 1, 1, 1, 1, 1, 1, 1, 0, 0]  # clear: 3 h at ≥ 2 °C
    assert [total for _, total, _ in seen][-1] == 1
    [alert] = store.list_alerts(DISTRICT)
    assert (alert.kind, alert.severity, alert.value) == ("frost", "critical", -0.5)


def test_waterlogging_is_per_station_over_24_hours(runner: JobRunner, clock: Clock, store: SqliteStore) -> None:
    hourly(store, 0, [0.0] * 4 + [6.0] * 9 + [0.0] * 40, metric="rainfall")  # 54 mm in hours 4..12
    seen = step_hours(runner, clock, store, range(50))
    active_hours = [h for h, _, active in seen if active]
    # raised when the ninth wet hour brings the 24-hour sum to 54 mm ≥ 50; the sum falls to ≤ 25 mm
    # (four wet hours left in the window) at hour 32, and 12 such hours clear it at hour 43
    assert active_hours == list(range(12, 43))
    [alert] = store.list_alerts(DISTRICT)
    assert (alert.device, alert.village, alert.value) == (STATION, VILLAGE, 54.0)
    assert alert.cleared_at == T0 + 43 * HOUR + 40 * 60_000


def test_no_agronomic_alerts_out_of_season(runner: JobRunner, clock: Clock, store: SqliteStore) -> None:
    winter = parse_rfc3339("2026-12-10T00:00:00+08:00")
    store.write(Batch(readings=[Reading(STATION, VILLAGE, winter + h * HOUR, {"air_temp": -15.0}) for h in range(5)]))
    clock.now = winter + 4 * HOUR + 40 * 60_000
    runner.run("rollups")
    runner.run("alerts")
    assert store.list_alerts(DISTRICT) == []


def test_staff_acknowledge_an_alert_through_the_api(ctx: Context, store: SqliteStore) -> None:
    alert = store.open_alert(Alert(f"drought:{VILLAGE}", "drought", "warning", VILLAGE, None, "旱", T0, 10.0, 15.0))
    assert alert is not None
    assert store.open_alert(Alert(f"drought:{VILLAGE}", "drought", "warning", VILLAGE, None, "旱", T0)) is None
    app = create_app(ctx, store)
    client = app.test_client()
    resp = client.post(f"/api/v1/alerts/{alert.id}/ack", json={"by": "王主任"})
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert (body["id"], body["acked_by"], body["active"]) == (str(alert.id), "王主任", True)
    again = client.post(f"/api/v1/alerts/{alert.id}/ack", json={"by": "李会计"}).get_json()
    assert again["acked_by"] == "王主任"  # the first acknowledgement stands
    missing = client.post("/api/v1/alerts/999/ack", json={})
    assert missing.status_code == 404 and missing.get_json()["error"]["code"] == "not_found"
    bad = client.post(f"/api/v1/alerts/{alert.id}/ack", json={"who": "x"})
    assert bad.status_code == 400 and bad.get_json()["error"]["field"] == "who"
    [stored] = store.list_alerts(InRegion("village", VILLAGE), active=True)
    assert stored.acked_by == "王主任" and stored.version == 2


def test_rules_with_thresholds_the_wrong_way_round_are_refused(ctx: Context, tmp_path: Path) -> None:
    path = tmp_path / "alerts.toml"
    path.write_text('[[rules]]\nid = "d"\nkind = "drought"\nmetric = "soil_moisture"\nop = "below"\n'
                    'raise = 15.0\nclear = 12.0\nmessage = "{region}"\n', encoding="utf-8")
    with pytest.raises(SettingsError, match="clear"):
        AlertsConfig.load(path, ctx.catalogue)
    path.write_text('[[rules]]\nid = "d"\nkind = "drought"\nmetric = "soil_wetness"\nop = "below"\n'
                    'raise = 15.0\nclear = 18.0\nmessage = "{region}"\n', encoding="utf-8")
    with pytest.raises(SettingsError, match="soil_wetness"):
        AlertsConfig.load(path, ctx.catalogue)


def test_webhook_failures_are_retried_on_the_next_run(ctx: Context, store: SqliteStore,
                                                      httpserver: HTTPServer) -> None:
    cfg = AlertsConfig.load(ctx.settings.config_dir / "alerts.toml", ctx.catalogue)
    cfg = cfg.model_copy(update={"webhooks": {"211204101": Webhook(url=httpserver.url_for("/hook"), timeout_s=2)}})
    notifier = Notifier(store, cfg, Recorder(), ctx.settings.tz)
    store.open_alert(Alert(f"frost:{VILLAGE}", "frost", "critical", VILLAGE, None, "霜冻", T0, -1.0, 0.0))
    store.open_alert(Alert("frost:211204102200", "frost", "critical", "211204102200", None, "霜冻", T0))  # no hook
    httpserver.expect_ordered_request("/hook", method="POST").respond_with_data("busy", status=503)
    httpserver.expect_ordered_request("/hook", method="POST").respond_with_data("ok", status=200)
    notifier.deliver(T0)  # 503: stays undelivered
    assert [a.key for a in store.undelivered_alerts("webhook")] == [f"frost:{VILLAGE}"]
    notifier.deliver(T0 + 60_000)  # retried: accepted
    assert store.undelivered_alerts("webhook") == []
    notifier.deliver(T0 + 120_000)  # nothing new: no request
    assert len(httpserver.log) == 2
    event = orjson.loads(httpserver.log[1][0].get_data())
    assert event["event"] == "raised" and event["alert"]["region"] == VILLAGE
    store.clear_alert(f"frost:{VILLAGE}", T0 + HOUR)
    httpserver.expect_ordered_request("/hook", method="POST").respond_with_data("ok", status=200)
    notifier.deliver(T0 + HOUR)
    assert orjson.loads(httpserver.log[2][0].get_data())["event"] == "cleared"
    httpserver.check_assertions()


def _retained(broker: Mosquitto, topic: str, want: Any, timeout: float = 10.0) -> dict[str, Any]:
    """Subscribe afresh and wait (with a deadline) for the retained message on ``topic`` to satisfy ``want``."""
    got: dict[str, Any] = {}
    ready = threading.Event()

    def on_message(c: mqtt.Client, u: Any, m: mqtt.MQTTMessage) -> None:
        if m.retain:
            got.update(orjson.loads(m.payload))
            ready.set()

    deadline = time.monotonic() + timeout
    while True:
        client = mqtt.Client(CallbackAPIVersion.VERSION2)
        client.on_message = on_message
        client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, qos=1)
        client.connect("127.0.0.1", broker.port)
        client.loop_start()
        ready.wait(max(0.1, deadline - time.monotonic()))
        client.disconnect()
        client.loop_stop()
        if ready.is_set() and want(got):
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"no matching retained message on {topic}: {got}")
        got.clear()
        ready.clear()


def test_alerts_are_published_retained_per_region(ctx: Context, store: SqliteStore, own_mosquitto: Mosquitto) -> None:
    cfg = AlertsConfig.load(ctx.settings.config_dir / "alerts.toml", ctx.catalogue)
    publisher = MqttPublisher(MqttAddress("127.0.0.1", own_mosquitto.port, None, None))
    notifier = Notifier(store, cfg, publisher, ctx.settings.tz)
    try:
        store.open_alert(Alert(f"heat:{VILLAGE}", "heat", "warning", VILLAGE, None, "高温", T0, 36.0, 35.0))
        assert notifier.deliver(T0).startswith("published 3 region snapshots")  # village, township, district
        assert store.undelivered_alerts("mqtt") == []
        district = _retained(own_mosquitto, "nongyun/v1/alerts/211204", lambda d: len(d.get("alerts", [])) == 1)
        assert district["alerts"][0]["kind"] == "heat" and district["alerts"][0]["region"] == VILLAGE
        township = _retained(own_mosquitto, "nongyun/v1/alerts/211204101", lambda d: d.get("region") == "211204101")
        assert len(township["alerts"]) == 1
        store.clear_alert(f"heat:{VILLAGE}", T0 + HOUR)
        notifier.deliver(T0 + HOUR)
        cleared = _retained(own_mosquitto, "nongyun/v1/alerts/211204", lambda d: d.get("alerts") == [])
        assert cleared["region"] == "211204"
    finally:
        notifier.close()
