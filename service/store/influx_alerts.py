"""Alerts in the InfluxDB backend: one point per alert in measurement ``alert``, changed in place.

A point is (measurement, tags, time) and writing some fields of it again merges them in, so an
alert is raised by writing its point and acknowledged, cleared or marked delivered by writing just
those fields. Its id is the point's time in microseconds (a wall-clock value made strictly
increasing in the process), so ``ack_alert(id)`` finds it with a one-microsecond range. Tags are
what lists filter on (key, kind, village); every field keeps one type (integers for times and
delivered versions, floats for value and threshold, strings for the rest).

``version`` is not stored: it is 1 + acknowledged + cleared, each of which happens at most once,
so the web process acknowledging and the jobs runner clearing never race on a counter.

At most one active alert per key: ``open_alert`` looks for an active alert of the key first. Only
the jobs runner (one per deployment, by its lease) raises and clears alerts, so that read and the
write that follows do not race; two staff acknowledging within the same few milliseconds may see
the later name stand (the first-ack rule holds for every acknowledgement that sees the first).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, cast

from ..errors import NotFound
from . import flux, lineproto
from .base import Alert, AlertChannel, InRegion

Row = dict[str, Any]
Query = Callable[[str, dict[str, object]], list[Row]]
Post = Callable[[list[str]], None]
CHANNEL_FIELD: dict[str, str] = {"mqtt": "mqtt_version", "webhook": "webhook_version"}


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _text(value: Any) -> str | None:
    return lineproto.dec(value) if isinstance(value, str) else None


def alert_of(rec: Row) -> Alert:
    cleared, acked = _opt_int(rec.get("cleared_at")), _opt_int(rec.get("acked_at"))
    return Alert(
        key=_text(rec.get("key")) or "", kind=_text(rec.get("kind")) or "",
        severity=cast(Any, _text(rec.get("severity")) or "warning"), village=_text(rec.get("village")) or "",
        device=_text(rec.get("device")), message=_text(rec.get("message")) or "",
        raised_at=int(rec["raised_at"]), value=_opt_float(rec.get("value")),
        threshold=_opt_float(rec.get("threshold")), id=flux.time_us(rec["_time"]), cleared_at=cleared,
        acked_at=acked, acked_by=_text(rec.get("acked_by")),
        version=1 + (acked is not None) + (cleared is not None))


def _delivered(rec: Row, channel: str) -> int:
    return int(rec.get(CHANNEL_FIELD[channel]) or 0)


class InfluxAlerts:
    """The alert half of ``JobsStore`` over the backend's query and write paths."""

    def __init__(self, query: Query, post: Post) -> None:
        self._query = query
        self._post = post
        self._last_id = 0
        self._lock = threading.Lock()

    def _next_id(self) -> int:
        with self._lock:
            self._last_id = max(time.time_ns() // 1000, self._last_id + 1)
            return self._last_id

    def _find(self, *, prefix: str = "", key: str | None = None, active: bool | None = None, limit: int = 500,
              span_us: tuple[int, int] | None = None) -> list[Row]:
        """``prefix``: of the alert's village code (a region code; "" for every village)."""
        start, stop = (flux.us_time(span_us[0]), flux.us_time(span_us[1])) if span_us else (flux.EPOCH, flux.FAR_FUTURE)
        params: dict[str, object] = {
            "_start": start, "_stop": stop, "_region": prefix,
            "_byActive": active is not None, "_active": bool(active), "_limit": int(limit)}
        if key is not None:
            return self._query("alerts_key", {**params, "_key": lineproto.enc(key)})
        return self._query("alerts", params)

    def _by_id(self, alert_id: int) -> Row | None:
        found = self._find(span_us=(alert_id, alert_id + 1), limit=1)
        return found[0] if found else None

    def _update(self, rec: Row, fields: dict[str, lineproto.AlertField | None]) -> None:
        self._post([lineproto.alert_line(_text(rec["key"]) or "", _text(rec["kind"]) or "", _text(rec["village"]) or "",
                                         flux.time_us(rec["_time"]), fields)])

    def open(self, a: Alert) -> Alert | None:
        if self._find(key=a.key, active=True, limit=1):
            return None
        alert_id = self._next_id()
        self._post([lineproto.alert_line(a.key, a.kind, a.village, alert_id, {
            "severity": a.severity, "message": a.message, "device": a.device, "raised_at": int(a.raised_at),
            "value": _opt_float(a.value), "threshold": _opt_float(a.threshold)})])
        return Alert(a.key, a.kind, a.severity, a.village, a.device, a.message, int(a.raised_at),
                     value=_opt_float(a.value), threshold=_opt_float(a.threshold), id=alert_id)

    def clear(self, key: str, ts: int) -> Alert | None:
        found = self._find(key=key, active=True, limit=1)
        if not found:
            return None
        self._update(found[0], {"cleared_at": int(ts)})
        return alert_of({**found[0], "cleared_at": int(ts)})

    def ack(self, alert_id: int, by: str, ts: int) -> Alert:
        rec = self._by_id(alert_id)
        if rec is None:
            raise NotFound(f"no alert with id {alert_id}")
        if rec.get("acked_at") is not None:
            return alert_of(rec)
        self._update(rec, {"acked_at": int(ts), "acked_by": by})
        return alert_of({**rec, "acked_at": int(ts), "acked_by": lineproto.enc(by)})

    def get(self, alert_id: int) -> Alert | None:
        rec = self._by_id(alert_id)
        return alert_of(rec) if rec is not None else None

    def listing(self, region: InRegion, active: bool | None, limit: int) -> list[Alert]:
        if limit <= 0:
            return []
        return [alert_of(rec) for rec in self._find(prefix=region.code, active=active, limit=limit)]

    def undelivered(self, channel: AlertChannel, limit: int) -> list[Alert]:
        if limit <= 0:
            return []
        params: dict[str, object] = {"_start": flux.EPOCH, "_stop": flux.FAR_FUTURE, "_channel": channel,
                                     "_limit": int(limit)}
        return [alert_of(rec) for rec in self._query("alerts_undelivered", params)]

    def mark_delivered(self, alert_id: int, channel: AlertChannel, version: int) -> None:
        rec = self._by_id(alert_id)
        if rec is None or _delivered(rec, channel) >= version:
            return
        self._update(rec, {CHANNEL_FIELD[channel]: int(version)})
