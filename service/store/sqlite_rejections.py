"""Rejections in the embedded store: exact counts per (device, reason), samples bounded per device.

Why: one 64 KiB message used to become 32,000 rejection rows, and a global trim let one device's
flood push every other device's samples out. Now
- ``rejection_counts`` counts every rejection per (device, reason), always exactly;
- ``rejections`` keeps samples for operators to read (bounds in ``rejection_limits``): at most
  ``PER_BATCH`` per (device, reason)
  from one batch (one message producing many rejections stores a few), at most ``PER_MINUTE`` per
  (device, reason) per minute of receive time, and at most ``PER_DEVICE`` per device (its oldest
  go first). Rejections of unknown or malformed device ids share one allowance (``ANONYMOUS``):
  their names are free for a flooder to vary, so they cannot each claim a device's allowance.
So the samples one device can keep are bounded, and nothing it sends removes another's.
"""

from __future__ import annotations

import sqlite3
from collections import Counter

from ..records import Rejection
from .rejection_limits import ANONYMOUS, ANONYMOUS_REASONS, PER_BATCH, PER_DEVICE, PER_MINUTE, owner

__all__ = ["ANONYMOUS", "PER_BATCH", "PER_DEVICE", "PER_MINUTE", "counts", "delete_before", "store"]
MINUTE_MS = 60_000

SCHEMA_V2 = """
CREATE TABLE IF NOT EXISTS rejection_counts (
    device TEXT NOT NULL, reason TEXT NOT NULL, count INTEGER NOT NULL, last_ts INTEGER NOT NULL,
    PRIMARY KEY (device, reason)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS rejections_by_device ON rejections (device, reason, ts);
CREATE INDEX IF NOT EXISTS rejections_by_ts ON rejections (ts);
INSERT OR IGNORE INTO rejection_counts (device, reason, count, last_ts)
    SELECT CASE WHEN reason IN ('unknown_device', 'bad_topic') THEN '*' ELSE device END, reason, COUNT(*), MAX(ts)
    FROM rejections GROUP BY 1, 2
"""

INSERT = "INSERT INTO rejections (ts, topic, device, reason, detail, payload) VALUES (?, ?, ?, ?, ?, ?)"
ADD_COUNT = (
    "INSERT INTO rejection_counts (device, reason, count, last_ts) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (device, reason) DO UPDATE SET count = count + excluded.count, "
    "last_ts = MAX(last_ts, excluded.last_ts)"
)


def _in(owner_: str, column: str = "device") -> tuple[str, tuple[str, ...]]:
    if owner_ == ANONYMOUS:
        return f"reason IN ({', '.join('?' * len(ANONYMOUS_REASONS))})", tuple(sorted(ANONYMOUS_REASONS))
    return f"{column} = ? AND reason NOT IN ('unknown_device', 'bad_topic')", (owner_,)


def store(conn: sqlite3.Connection, rejections: list[Rejection]) -> int:
    """Count every rejection, keep the allowed samples; returns how many samples were stored."""
    counts: Counter[tuple[str, str]] = Counter()
    last: dict[tuple[str, str], int] = {}
    picked: dict[tuple[str, str], list[Rejection]] = {}
    for j in rejections:
        key = (owner(j), j.reason)
        counts[key] += 1
        last[key] = max(last.get(key, j.ts), j.ts)
        group = picked.setdefault(key, [])
        if len(group) < PER_BATCH:
            group.append(j)
    conn.executemany(ADD_COUNT, [(d, r, n, last[(d, r)]) for (d, r), n in counts.items()])
    stored = 0
    owners: set[str] = set()
    for (who, reason), group in picked.items():
        newest = max(j.ts for j in group)
        where, params = _in(who)
        recent = int(conn.execute(f"SELECT COUNT(*) FROM rejections WHERE {where} AND reason = ? AND ts > ?",
                                  (*params, reason, newest - MINUTE_MS)).fetchone()[0])
        keep = group[:max(0, PER_MINUTE - recent)]
        conn.executemany(INSERT, [(j.ts, j.topic, j.device, j.reason, j.detail, j.payload) for j in keep])
        stored += len(keep)
        if keep:
            owners.add(who)
    for who in owners:
        where, params = _in(who)
        conn.execute(f"DELETE FROM rejections WHERE {where} AND id <= (SELECT id FROM rejections WHERE {where} "
                     "ORDER BY id DESC LIMIT 1 OFFSET ?)", (*params, *params, PER_DEVICE))
    return stored


def counts(conn: sqlite3.Connection) -> dict[tuple[str, str], int]:
    """Every (device or ``*``, reason) with its exact count."""
    return {(str(d), str(r)): int(n) for d, r, n in conn.execute("SELECT device, reason, count FROM rejection_counts")}


def delete_before(conn: sqlite3.Connection, ts: int) -> int:
    """Retention: samples received before ``ts`` (counts stay: they are totals)."""
    return conn.execute("DELETE FROM rejections WHERE ts < ?", (ts,)).rowcount
