"""Telling other systems: retained MQTT snapshots per region, and webhooks per region.

- MQTT: ``nongyun/v1/alerts/{region}`` carries, retained, the region's active alerts as one JSON
  document, for the village, its township and the district of every alert that changed. A gateway
  (WeChat, SMS) subscribing to ``nongyun/v1/alerts/211204`` gets the district's state at once on
  connect and every change after; an empty list means all clear. A snapshot is idempotent, so
  publishing it again after a failure is harmless.
- Webhooks (config/alerts.toml ``[webhooks."<region>"]``): each change of an alert under the region
  is POSTed as ``{"event", "alert"}``. At least once: a failed POST is logged and the alert stays
  undelivered until every hook of its region accepted it.
Delivery state lives in the store (``undelivered_alerts`` / ``mark_delivered``), so a restart or
a new lease holder picks up exactly what was not delivered.
"""

from __future__ import annotations

import logging
import threading
import urllib.error
import urllib.request
import uuid
from typing import Protocol
from zoneinfo import ZoneInfo

import orjson

from ..settings import MqttAddress
from ..store.base import InRegion, JobsStore
from ..times import format_local
from .config import AlertsConfig, Webhook
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
        log.warning("alerts: webhook %s failed: %s (retried next run)", hook.url, exc)
        return False
    if not ok:
        log.warning("alerts: webhook %s answered %d (retried next run)", hook.url, resp.status)
    return ok


class Notifier:
    def __init__(self, store: JobsStore, cfg: AlertsConfig, publisher: Publisher, tz: ZoneInfo) -> None:
        self.store = store
        self.cfg = cfg
        self.publisher = publisher
        self.tz = tz

    def deliver(self, now: int) -> str:
        published = self._mqtt(now)
        posted = self._webhooks()
        return f"published {published} region snapshots, delivered {posted} webhook events"

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

    def _webhooks(self) -> int:
        delivered = 0
        for a in self.store.undelivered_alerts("webhook"):
            hooks = self.cfg.hooks_for(a.village)
            body = orjson.dumps({"event": event_of(a), "alert": alert_json(a, self.tz)})
            results = [post_json(hook, body) for _, hook in hooks]  # every hook tried, none skipped
            if all(results):
                self.store.mark_delivered(a.id, "webhook", a.version)
                delivered += bool(hooks)
        return delivered

    def close(self) -> None:
        self.publisher.close()
