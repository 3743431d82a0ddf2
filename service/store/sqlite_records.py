"""Harvest records in the embedded store: ids, status, revisions, keyset listing (DESIGN.md "Harvest records").

Why a table rebuilt rather than altered: a record's identity was (village, device, crop, plot, ts),
so a second weigh ticket of the same minute replaced the first. The id is now the key: staff and
import entries get a fresh one each, device records one derived from that old identity
(``records.device_record_id``), so a redelivered MQTT message still lands on the same row. SQLite
cannot change a primary key in place, hence schema step 3 copies the rows into the new table,
deriving the ids of the rows already there the device way.

Listing is newest first by (ts, id) with the last row of a page as the cursor: ``(ts, id) < (?, ?)``
on the index (village, ts) — whose rows carry the key id — costs the same on page 1 and page 50.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import orjson

from ..errors import Conflict
from ..records import Revision, YieldRecord, device_record_id
from .base import RecordsQuery
from .sqlite_schema import statements

# Step 3: the id-keyed table, revisions, and the indexes the listing and the status filter use.
SCHEMA_V3 = """
CREATE TABLE yields_v3 (
    id TEXT NOT NULL PRIMARY KEY,
    village INTEGER NOT NULL, device TEXT NOT NULL, crop TEXT NOT NULL, plot TEXT NOT NULL,
    ts INTEGER NOT NULL, area_ha REAL NOT NULL, yield_kg REAL NOT NULL, moisture_pct REAL,
    source TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'submitted', entered_by TEXT NOT NULL DEFAULT '',
    revision INTEGER NOT NULL DEFAULT 1, updated INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
INSERT INTO yields_v3 (id, village, device, crop, plot, ts, area_ha, yield_kg, moisture_pct, source, updated)
    SELECT device_record_id(village, device, crop, plot, ts), village, device, crop, plot, ts, area_ha, yield_kg,
           moisture_pct, source, ts FROM yields;
DROP TABLE yields;
ALTER TABLE yields_v3 RENAME TO yields;
CREATE INDEX yields_by_ts ON yields (ts);
CREATE INDEX yields_by_village ON yields (village, ts);
CREATE INDEX yields_by_status ON yields (status, village, ts);
CREATE TABLE yield_revisions (
    id TEXT NOT NULL, revision INTEGER NOT NULL, at INTEGER NOT NULL, by TEXT NOT NULL, reason TEXT NOT NULL,
    changes TEXT NOT NULL, status TEXT NOT NULL,
    PRIMARY KEY (id, revision)
) WITHOUT ROWID;
"""


def upgrade_v3(conn: sqlite3.Connection) -> None:
    """Step 3, inside ``sqlite_schema.upgrade``'s transaction: the SQL function that derives the ids
    of existing rows (the device way), then the statements."""
    conn.create_function("device_record_id", 5,
                         lambda v, d, c, p, ts: device_record_id(str(v), d, c, p, int(ts)), deterministic=True)
    for stmt in statements(SCHEMA_V3):
        conn.execute(stmt)


COLUMNS = "id, village, device, crop, plot, ts, area_ha, yield_kg, moisture_pct, source, status, entered_by, " \
          "revision, updated"
# A device record written again (a redelivery, or the device's own resend) replaces its point, as
# InfluxDB would — unless staff changed it since: a correction or review is never undone by a resend.
UPSERT = (
    f"INSERT INTO yields ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (id) DO UPDATE SET village = excluded.village, area_ha = excluded.area_ha, "
    "yield_kg = excluded.yield_kg, moisture_pct = excluded.moisture_pct, source = excluded.source, "
    "updated = excluded.updated WHERE yields.revision = 1"
)
REPLACE = f"INSERT OR REPLACE INTO yields ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
ADD_REVISION = ("INSERT INTO yield_revisions (id, revision, at, by, reason, changes, status) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)")
NOT_VOID = "status != 'void'"


def row_of(y: YieldRecord, now: int) -> tuple[Any, ...]:
    return (y.record_id, int(y.village), y.device, y.crop, y.plot, y.ts, y.area_ha, y.yield_kg, y.moisture_pct,
            y.source, y.status, y.entered_by, y.revision, y.updated or now)


def record_of(row: Any) -> YieldRecord:
    i, v, d, c, p, ts, a, y, m, s, st, by, rev, up = row
    return YieldRecord(d, str(v), int(ts), c, float(a), float(y), p, m, s, i, st, by, int(rev), int(up))


def list_records(conn: sqlite3.Connection, q: RecordsQuery) -> list[YieldRecord]:
    lo, hi = q.region.village_range()
    where = ["village BETWEEN ? AND ?", "ts >= ?", "ts < ?"]
    params: list[Any] = [lo, hi, q.start, q.end]
    for column, value in (("crop", q.crop), ("status", q.status), ("plot", q.plot)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    if q.sources:
        where.append(f"source IN ({', '.join('?' * len(q.sources))})")
        params.extend(q.sources)
    if q.after is not None:
        where.append("(ts, id) < (?, ?)")
        params.extend(q.after)
    rows = conn.execute(f"SELECT {COLUMNS} FROM yields WHERE {' AND '.join(where)} ORDER BY ts DESC, id DESC "
                        "LIMIT ?", [*params, q.limit]).fetchall()
    return [record_of(r) for r in rows]


def get_record(conn: sqlite3.Connection, record_id: str) -> YieldRecord | None:
    row = conn.execute(f"SELECT {COLUMNS} FROM yields WHERE id = ?", (record_id,)).fetchone()
    return record_of(row) if row is not None else None


def save_record(conn: sqlite3.Connection, rec: YieldRecord, revision: Revision, replaces: YieldRecord | None,
                now: int) -> None:
    """Inside the caller's write transaction: the stored revision is checked, so two clerks
    correcting one record at once cannot both win (the second gets Conflict ``changed``)."""
    found = conn.execute("SELECT revision FROM yields WHERE id = ?", (rec.record_id,)).fetchone()
    expected = None if replaces is None else replaces.revision
    if (found[0] if found is not None else None) != expected:
        if replaces is None:
            raise Conflict(f"a record with id {rec.record_id} exists already", "duplicate", rec.record_id)
        raise Conflict(f"record {rec.record_id} was changed meanwhile (now revision {found and found[0]}); "
                       "reload it / 记录已被他人修改，请刷新", "changed", rec.record_id)
    conn.execute(REPLACE, row_of(rec, now))
    conn.execute(ADD_REVISION, (revision.record, revision.revision, revision.at, revision.by, revision.reason,
                                orjson.dumps(revision.changes).decode(), revision.status))


def history(conn: sqlite3.Connection, record_id: str) -> list[Revision]:
    rows = conn.execute("SELECT id, revision, at, by, reason, changes, status FROM yield_revisions WHERE id = ? "
                        "ORDER BY revision", (record_id,)).fetchall()
    return [Revision(i, int(r), int(at), by, reason, orjson.loads(ch), st) for i, r, at, by, reason, ch, st in rows]
