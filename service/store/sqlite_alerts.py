"""Alerts in the embedded store: one table of active and cleared alerts (the history).

A partial unique index allows one active alert per key, so two evaluations of the same rule (a
retry, a restart, a second runner that slipped past the lease) can never raise it twice: the second
``INSERT OR IGNORE`` simply does nothing. ``version`` counts changes; ``mqtt_version`` and
``webhook_version`` record what each notifier has delivered, so a failed delivery is retried on the
next run and a successful one never repeats.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from ..errors import NotFound
from .base import Alert, AlertChannel

SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY, key TEXT NOT NULL, kind TEXT NOT NULL, severity TEXT NOT NULL,
    village INTEGER NOT NULL, device TEXT, message TEXT NOT NULL, value REAL, threshold REAL,
    raised_at INTEGER NOT NULL, cleared_at INTEGER, acked_at INTEGER, acked_by TEXT,
    version INTEGER NOT NULL DEFAULT 1,
    mqtt_version INTEGER NOT NULL DEFAULT 0, webhook_version INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX IF NOT EXISTS alerts_one_active ON alerts (key) WHERE cleared_at IS NULL;
CREATE INDEX IF NOT EXISTS alerts_by_village ON alerts (village, raised_at);
"""

COLUMNS = ("id, key, kind, severity, village, device, message, value, threshold, raised_at, cleared_at, "
           "acked_at, acked_by, version")
CHANNEL_COLUMN: dict[str, str] = {"mqtt": "mqtt_version", "webhook": "webhook_version"}


def _alert(row: Any) -> Alert:
    (id_, key, kind, severity, village, device, message, value, threshold, raised, cleared, acked, by,
     version) = row
    return Alert(key=key, kind=kind, severity=severity, village=str(village), device=device, message=message,
                 raised_at=int(raised), value=value, threshold=threshold, id=int(id_), cleared_at=cleared,
                 acked_at=acked, acked_by=by, version=int(version))


def _one(conn: sqlite3.Connection, where: str, params: tuple[Any, ...]) -> Alert | None:
    row = conn.execute(f"SELECT {COLUMNS} FROM alerts WHERE {where}", params).fetchone()
    return _alert(row) if row else None


def open_alert(conn: sqlite3.Connection, a: Alert) -> Alert | None:
    cur = conn.execute(
        "INSERT OR IGNORE INTO alerts (key, kind, severity, village, device, message, value, threshold, raised_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (a.key, a.kind, a.severity, int(a.village), a.device, a.message, a.value, a.threshold, a.raised_at))
    if cur.rowcount == 0:
        return None
    return _one(conn, "id = ?", (cur.lastrowid,))


def clear_alert(conn: sqlite3.Connection, key: str, ts: int) -> Alert | None:
    found = _one(conn, "key = ? AND cleared_at IS NULL", (key,))
    if found is None:
        return None
    conn.execute("UPDATE alerts SET cleared_at = ?, version = version + 1 WHERE id = ?", (ts, found.id))
    return _one(conn, "id = ?", (found.id,))


def ack_alert(conn: sqlite3.Connection, alert_id: int, by: str, ts: int) -> Alert:
    conn.execute("UPDATE alerts SET acked_at = ?, acked_by = ?, version = version + 1 "
                 "WHERE id = ? AND acked_at IS NULL", (ts, by, alert_id))
    found = _one(conn, "id = ?", (alert_id,))
    if found is None:
        raise NotFound(f"no alert with id {alert_id}")
    return found


def get_alert(conn: sqlite3.Connection, alert_id: int) -> Alert | None:
    return _one(conn, "id = ?", (alert_id,))


def list_alerts(conn: sqlite3.Connection, villages: tuple[int, int], active: bool | None, limit: int) -> list[Alert]:
    where = "village BETWEEN ? AND ?"
    if active is True:
        where += " AND cleared_at IS NULL"
    elif active is False:
        where += " AND cleared_at IS NOT NULL"
    rows = conn.execute(f"SELECT {COLUMNS} FROM alerts WHERE {where} ORDER BY raised_at DESC, id DESC LIMIT ?",
                        (villages[0], villages[1], limit))
    return [_alert(r) for r in rows]


def undelivered(conn: sqlite3.Connection, channel: AlertChannel, limit: int) -> list[Alert]:
    column = CHANNEL_COLUMN[channel]
    rows = conn.execute(f"SELECT {COLUMNS} FROM alerts WHERE {column} < version ORDER BY id LIMIT ?", (limit,))
    return [_alert(r) for r in rows]


def mark_delivered(conn: sqlite3.Connection, alert_id: int, channel: AlertChannel, version: int) -> None:
    column = CHANNEL_COLUMN[channel]
    conn.execute(f"UPDATE alerts SET {column} = MAX({column}, ?) WHERE id = ?", (version, alert_id))
