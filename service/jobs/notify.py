"""Telling other systems: retained MQTT snapshots per region, and webhooks per region.

- MQTT: ``nongyun/v1/alerts/{region}`` carries, retained, the region's active alerts as one JSON
  document, for the village, its township and the district of every alert that changed. A gateway
  (WeChat, SMS) subscribing to ``nongyun/v1/alerts/211204`` gets the district's state at once on
  connect and every change after; an empty list means all clear. A snapshot is idempotent, so
  publishing it again after a failure is harmless.
- Webhooks (config/alerts.toml ``[webhooks."<region>"]``): each change of an alert under the region
  is POSTed as ``{"event", "alert"}``. At least once: a failed POST is logged and the alert stays
  undelivered until every hook of its region accepted it.
- Group robots (``[[channels]]``: 企业微信 ``wecom``, 钉钉 ``dingtalk``, or a ``webhook`` with retries),
  per region and alert kind: each change is shaped into the robot's markdown and *queued* in the
  outbox (``outbox.py``), which a worker thread drains with back-off and dead letters, so a slow or
  rate-limited robot never holds up the runner. The weekly 墒情简报 link is queued the same way.
Delivery state lives in the store (``undelivered_alerts`` / ``mark_delivered``), so a restart or
a new lease holder picks up exactly what was not delivered; the robots' outbox keys each message,
so queuing an alert change again (a retried run) sends it once.
"""

from __future__ import annotations

import logging
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from datetime import time as day_time
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import orjson

from ..settings import MqttAddress
from ..store.base import Alert, InRegion, JobsStore
from ..times import format_local
from . import robots as rb
from .config import AlertsConfig, Channel, Webhook
from .outbox import Dispatcher, Outbox, Sender, wall_ms
from .views import alert_json, event_of

log = logging.getLogger(__name__)

TOPIC = "nongyun/v1/alerts/{region}"
PUBLISH_TIMEOUT_S = 5.0


class Publisher(Protocol):
    def publish(self, topic: str, payload: bytes) -> bool:
        """Publish retained at QoS 1; True once the broker acknowledged it."""

    def close(self) -> None: ...


class MqttPublisher:
    """A paho client that connects on first use: standby runners never open a connection."""

    def __init__(self, address: MqttAddress) -> None:
        self.address = address
        self._client: object | None = None
        self._connected = threading.Event()
        self._lock = threading.Lock()

    def _ensure(self) -> object:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        with self._lock:
            if self._client is None:
                client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"nongyun-jobs-{uuid.uuid4().hex[:8]}")
                if self.address.username:
                    client.username_pw_set(self.address.username, self.address.password)
                client.on_connect = lambda c, u, f, rc, p: self._connected.set() if not rc.is_failure else None
                client.on_disconnect = lambda c, u, f, rc, p: self._connected.clear()
                client.connect_async(self.address.host, self.address.port, keepalive=30)
                client.loop_start()
                self._client = client
            return self._client

    def publish(self, topic: str, payload: bytes) -> bool:
        import paho.mqtt.client as mqtt

        client = self._ensure()
        assert isinstance(client, mqtt.Client)
        if not self._connected.wait(PUBLISH_TIMEOUT_S):
            log.warning("alerts: broker %s:%d not reachable; %s waits for the next run",
                        self.address.host, self.address.port, topic)
            return False
        info = client.publish(topic, payload, qos=1, retain=True)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            log.warning("alerts: publish to %s refused: %s", topic, mqtt.error_string(info.rc))
            return False
        try:
            info.wait_for_publish(PUBLISH_TIMEOUT_S)
        except (RuntimeError, ValueError) as exc:
            log.warning("alerts: publish to %s failed: %s", topic, exc)
            return False
        return info.is_published()

    def close(self) -> None:
        import paho.mqtt.client as mqtt

        with self._lock:
            client, self._client = self._client, None
        if isinstance(client, mqtt.Client):
            client.disconnect()
            client.loop_stop()


def post_json(hook: Webhook, body: bytes) -> bool:
    req = urllib.request.Request(hook.url, data=body, method="POST",
                                 headers={"Content-Type": "application/json; charset=utf-8",
                                          "User-Agent": "nongyun-alerts/1"})
    try:
        with urllib.request.urlopen(req, timeout=hook.timeout_s) as resp:
            ok = bool(200 <= resp.status < 300)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        log.warning("alerts: webhook %s failed: %s (retried next run)", _shown(hook.url), exc)
        return False
    if not ok:
        log.warning("alerts: webhook %s answered %d (retried next run)", _shown(hook.url), resp.status)
    return ok


def _shown(url: str) -> str:
    """A webhook URL for the log: without its query, where tokens and keys travel."""
    return url.split("?", 1)[0]


def channel_sender(c: Channel, url: str, secret: str | None) -> Sender:
    """One attempt at ``c``: DingTalk URLs are signed afresh each time (a signature is valid an hour)."""
    def send(body: bytes) -> rb.Answer:
        target = rb.signed_url(url, secret, wall_ms()) if c.type == "dingtalk" else url
        return rb.post(target, body, c.timeout_s, errcode=c.type != "webhook")

    return send


class Robots:
    """Which alert changes go to which group robots, in what words; queued, never sent inline."""

    def __init__(self, cfg: AlertsConfig, outbox: Outbox, tz: ZoneInfo, *, place: Callable[[str], rb.Place],
                 unit: Callable[[Alert], str | None], public_url: str = "",
                 env: Mapping[str, str] | None = None) -> None:
        self.cfg = cfg
        self.outbox = outbox
        self.tz = tz
        self.place = place
        self.unit = unit
        self.public_url = public_url.rstrip("/")
        senders = {c.name: channel_sender(c, *c.resolve(env)) for c in cfg.channels}  # fails at start, not later
        self.dispatcher = Dispatcher(outbox, senders)

    def _local(self, ms: int) -> str:
        return datetime.fromtimestamp(ms / 1000, self.tz).strftime("%Y-%m-%d %H:%M")

    def body(self, c: Channel, a: Alert, event: str) -> bytes:
        if c.type == "webhook":
            return orjson.dumps({"event": event, "alert": alert_json(a, self.tz)})
        link = f"{self.public_url}/r/{a.village}" if self.public_url else None
        msg = rb.alert_message(a, event, self.place(a.village), self.unit(a), self._local, link)
        doc = rb.wecom_body(msg) if c.type == "wecom" else rb.dingtalk_body(msg, c.at_mobiles, c.at_all)
        return orjson.dumps(doc)

    def queue_alert(self, a: Alert) -> int:
        event = event_of(a)
        queued = 0
        for c in self.cfg.channels_for(a.village, a.kind, event):
            queued += self.outbox.put(f"alert:{a.id}:{a.version}:{c.name}", c.name, self.body(c, a, event))
        return queued

    def queue_briefs(self, now: int) -> str:
        """On the configured local weekday and hour (and for the day after, should the runner have been
        down), the link to last ISO week's 墒情简报 for each channel with ``weekly_brief``; once a week."""
        n = self.cfg.notify
        local = datetime.fromtimestamp(now / 1000, self.tz)
        monday = local.date() - timedelta(days=local.isoweekday() - 1)
        due = datetime.combine(monday + timedelta(days=n.brief_weekday - 1), day_time(n.brief_hour), self.tz)
        if not due <= local < due + timedelta(days=1):
            return "weekly brief: not due"
        year, week, _ = (monday - timedelta(days=7)).isocalendar()
        iso_week = f"{year}-W{week:02d}"
        wanted = [c for c in self.cfg.channels if c.weekly_brief]
        if wanted and not self.public_url:
            log.warning("notify: weekly brief %s not pushed: web.public_url is not set (the message is a link)",
                        iso_week)
            return "weekly brief: web.public_url is not set"
        queued = 0
        for c in wanted:
            link = (f"{self.public_url}/api/v1/reports/moisture-weekly?region={c.region}&week={iso_week}"
                    "&format=pdf")
            msg = rb.brief_message(self.place_name(c.region), iso_week, link)
            doc: dict[str, Any] = {"event": "weekly_brief", "region": c.region, "week": iso_week, "url": link}
            if c.type == "wecom":
                doc = rb.wecom_body(msg)
            elif c.type == "dingtalk":
                doc = rb.dingtalk_body(msg)
            queued += self.outbox.put(f"brief:{c.region}:{iso_week}:{c.name}", c.name, orjson.dumps(doc))
        if queued:
            self.dispatcher.kick()
        return f"weekly brief {iso_week}: queued {queued}"

    def place_name(self, region: str) -> str:
        p = self.place(region)
        return " ".join(x for x in (p.township, p.village) if x)

    def close(self) -> None:
        self.dispatcher.close()


class Notifier:
    def __init__(self, store: JobsStore, cfg: AlertsConfig, publisher: Publisher, tz: ZoneInfo,
                 robots: Robots | None = None) -> None:
        self.store = store
        self.cfg = cfg
        self.publisher = publisher
        self.tz = tz
        self.robots = robots

    def deliver(self, now: int) -> str:
        published = self._mqtt(now)
        posted, queued = self._webhooks()
        if self.robots is not None:
            self.robots.dispatcher.kick()  # also drains what a previous process left queued
        return (f"published {published} region snapshots, delivered {posted} webhook events"
                + (f", queued {queued} robot messages" if self.robots is not None else ""))

    def _mqtt(self, now: int) -> int:
        pending = self.store.undelivered_alerts("mqtt")
        if not pending:
            return 0
        regions = sorted({code for a in pending for code in (a.village, a.village[:9], a.village[:6])})
        ok: dict[str, bool] = {}
        for region in regions:
            active = self.store.list_alerts(InRegion.of_code(region), active=True)
            doc = {"region": region, "ts": format_local(now, self.tz),
                   "alerts": [alert_json(a, self.tz) for a in active]}
            ok[region] = self.publisher.publish(TOPIC.format(region=region), orjson.dumps(doc))
        for a in pending:
            if ok[a.village] and ok[a.village[:9]] and ok[a.village[:6]]:
                self.store.mark_delivered(a.id, "mqtt", a.version)
        return sum(ok.values())

    def _webhooks(self) -> tuple[int, int]:
        delivered = queued = 0
        for a in self.store.undelivered_alerts("webhook"):
            if self.robots is not None:  # queued first: a failing webhook below re-queues nothing twice
                queued += self.robots.queue_alert(a)
            hooks = self.cfg.hooks_for(a.village)
            body = orjson.dumps({"event": event_of(a), "alert": alert_json(a, self.tz)})
            results = [post_json(hook, body) for _, hook in hooks]  # every hook tried, none skipped
            if all(results):
                self.store.mark_delivered(a.id, "webhook", a.version)
                delivered += bool(hooks)
        return delivered, queued

    def close(self) -> None:
        self.publisher.close()
        if self.robots is not None:
            self.robots.close()
