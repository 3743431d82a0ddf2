"""The embedded store: one SQLite file under the data folder, no server.

Layout, chosen from the figures in MEASUREMENTS.md:
- ``readings`` is narrow (one row per metric value) and WITHOUT ROWID with the primary key
  (metric, ts, village, device): a point's identity is its key, so ``ON CONFLICT DO UPDATE`` gives
  InfluxDB's "same series and time replaces, field by field" rule, and every query of one metric
  over a time range is a range scan of the key. Devices and metrics are small integers.
- ``latest`` keeps the newest value per (device, metric), maintained on write from each batch's
  maxima, so "latest per device" never scans history.
- Village codes are integers; a region is a code range because codes nest by prefix.
- One connection per thread (web requests and the ingest writer run in different threads); WAL lets
  readers run beside the writer.
- Rollups (``sqlite_rollups``): ``write`` marks the (metric, hour) windows it touches; the jobs
  runner's ``refresh_rollups`` recomputes them; ``readings`` reads hour/day rollups where they are
  complete and raw points elsewhere. Alerts live beside them (``sqlite_alerts``).
- Harvest records (``sqlite_records``, schema step 3): ``yields`` is keyed by the record's id, with
  status and revision columns; ``yield_revisions`` keeps every change. Aggregates skip void rows.
- Schema versions and their migrations: ``STORE_STEPS`` (``sqlite_schema``), run at open. Rejections
  are counted exactly per (device, reason) and sampled within bounds (``sqlite_rejections``).
Vendor errors become StoreUnavailable (locked, read-only, I/O: retry), StoreFault (schema, corruption,
bugs: held) or StoreRejected (the content of one record).
"""

from __future__ import annotations

import sqlite3
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import orjson

from ..errors import StoreFault, StoreRejected, StoreUnavailable
from ..records import SOURCE_UNATTRIBUTED, Batch, Reading, Rejection, Revision, YieldRecord
from ..times import boundary_gcd, local_year, window_pieces
from . import sqlite_alerts, sqlite_records, sqlite_rejections, sqlite_rollups, sqlite_schema
from .base import (
    Alert,
    AlertChannel,
    DeviceLatest,
    IngestCounters,
    InRegion,
    ReadingsQuery,
    RecordsQuery,
    RollupProgress,
    Series,
    YieldsQuery,
    YieldTotals,
)
from .sqlite_tx import immediate

if TYPE_CHECKING:
    from ..settings import Settings

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS device_ids (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS metric_ids (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS readings (
    metric INTEGER NOT NULL, ts INTEGER NOT NULL, village INTEGER NOT NULL, device INTEGER NOT NULL,
    value REAL NOT NULL,
    PRIMARY KEY (metric, ts, village, device)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS latest (
    device INTEGER NOT NULL, metric INTEGER NOT NULL, ts INTEGER NOT NULL, village INTEGER NOT NULL,
    value REAL NOT NULL,
    PRIMARY KEY (device, metric)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS yields (
    village INTEGER NOT NULL, device TEXT NOT NULL, crop TEXT NOT NULL, plot TEXT NOT NULL,
    ts INTEGER NOT NULL, area_ha REAL NOT NULL, yield_kg REAL NOT NULL, moisture_pct REAL,
    source TEXT NOT NULL,
    PRIMARY KEY (village, device, crop, plot, ts)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS yields_by_ts ON yields (ts);
CREATE TABLE IF NOT EXISTS yield_last (
    device TEXT PRIMARY KEY, village INTEGER NOT NULL, ts INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS device_status (
    device TEXT PRIMARY KEY, village INTEGER NOT NULL, online INTEGER NOT NULL, ts INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rejections (
    id INTEGER PRIMARY KEY, ts INTEGER NOT NULL, topic TEXT NOT NULL, device TEXT NOT NULL,
    reason TEXT NOT NULL, detail TEXT NOT NULL, payload TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS rejections_by_reason ON rejections (reason, id);
CREATE TABLE IF NOT EXISTS counters (
    worker TEXT NOT NULL, name TEXT NOT NULL, value INTEGER NOT NULL, PRIMARY KEY (worker, name)
) WITHOUT ROWID;
"""

UPSERT_READING = (
    "INSERT INTO readings (metric, ts, village, device, value) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (metric, ts, village, device) DO UPDATE SET value = excluded.value"
)
UPSERT_LATEST = (
    "INSERT INTO latest (device, metric, ts, village, value) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (device, metric) DO UPDATE SET ts = excluded.ts, village = excluded.village, "
    "value = excluded.value WHERE excluded.ts >= latest.ts"
)
# The same two upserts over a batch as one JSON array of [device id, village, ts, {metric: value}]:
# rows in the array's order (CROSS JOIN keeps the planner from reordering), so a point given twice
# ends as its last copy and ``latest`` as the last of the newest, as row by row. Each reading's
# fields are taken out once (MATERIALIZED), not once per value. "WHERE true" is SQLite's rule for
# an upsert whose SELECT has a join.
_JSON_ROWS = (
    "WITH r AS MATERIALIZED (SELECT json_extract(value, '$[0]') AS device, json_extract(value, '$[1]') AS village, "
    "json_extract(value, '$[2]') AS ts, json_extract(value, '$[3]') AS vals FROM json_each(?1)) "
)
_JSON_FROM = "FROM r CROSS JOIN json_each(r.vals) AS v CROSS JOIN metric_ids AS m ON m.name = v.key WHERE true "
UPSERT_READINGS_JSON = (
    _JSON_ROWS + "INSERT INTO readings (metric, ts, village, device, value) "
    "SELECT m.id, r.ts, r.village, r.device, v.value " + _JSON_FROM +
    "ON CONFLICT (metric, ts, village, device) DO UPDATE SET value = excluded.value"
)
UPSERT_LATEST_JSON = (
    _JSON_ROWS + "INSERT INTO latest (device, metric, ts, village, value) "
    "SELECT r.device, m.id, r.ts, r.village, v.value " + _JSON_FROM +
    "ON CONFLICT (device, metric) DO UPDATE SET ts = excluded.ts, village = excluded.village, "
    "value = excluded.value WHERE excluded.ts >= latest.ts"
)
UPSERT_YIELD_LAST = (
    "INSERT INTO yield_last (device, village, ts) VALUES (?, ?, ?) "
    "ON CONFLICT (device) DO UPDATE SET village = excluded.village, ts = excluded.ts WHERE excluded.ts >= yield_last.ts"
)
UPSERT_STATUS = (
    "INSERT INTO device_status (device, village, online, ts) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (device) DO UPDATE SET village = excluded.village, online = excluded.online, "
    "ts = excluded.ts WHERE excluded.ts >= device_status.ts"
)
ADD_COUNTER = (
    "INSERT INTO counters (worker, name, value) VALUES (?, ?, ?) "
    "ON CONFLICT (worker, name) DO UPDATE SET value = value + excluded.value"
)
SET_COUNTER = (
    "INSERT INTO counters (worker, name, value) VALUES (?, ?, ?) "
    "ON CONFLICT (worker, name) DO UPDATE SET value = excluded.value"
)
GROUP_DIVISOR = {"district": 1_000_000, "township": 1_000, "village": 1}
# Schema versions (sqlite_schema): append a step to add a migration, never edit a released one.
STORE_STEPS: list[sqlite_schema.Step] = [
    sqlite_schema.Step("the schema before versions (issue 11)",
                       SCHEMA + sqlite_rollups.SCHEMA + sqlite_alerts.SCHEMA),
    sqlite_schema.Step("rejection counts per (device, reason); samples bounded per device",
                       sqlite_rejections.SCHEMA_V2),
    sqlite_schema.Step("yield records keyed by id, with status and revisions (issue 18)",
                       run=sqlite_records.upgrade_v3),
]
TRANSIENT_MESSAGES = ("locked", "busy", "readonly", "read-only", "unable to open", "disk i/o", "full")


@lru_cache(maxsize=16)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _local_year_sql(ts: int, tz_name: str) -> int:
    return local_year(ts, _zone(tz_name))


def _status_sql(q: YieldsQuery) -> str:
    """Aggregates count every record that is not void; ``status=approved`` only approved ones."""
    return "status = 'approved'" if q.status == "approved" else sqlite_records.NOT_VOID


class _Held:
    """Owns one thread's connection and closes it when the thread's locals are freed."""

    __slots__ = ("__weakref__", "conn")

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def close(self) -> None:
        with suppress(sqlite3.Error):
            self.conn.close()

    def __del__(self) -> None:
        self.close()


class SqliteStore:
    name = "sqlite"

    def __init__(self, path: str | Path, tz: ZoneInfo | str = "Asia/Shanghai", read_only: bool = False) -> None:
        """``tz``: the zone whose local days the daily rollups follow (settings ``time.tz``).
        ``read_only``: open with ``mode=ro`` and change nothing (``nongyun migrate``'s source); the
        file must exist and be of our schema version."""
        self.path = Path(path)
        self.read_only = read_only
        self.tz = tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz)
        self.stats = sqlite_rollups.QueryStats()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._all: weakref.WeakSet[_Held] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self.bulk_readings = True  # False: row by row (tests compare the two ways)
        self._ids: dict[tuple[str, str], int] = {}
        self._writes = 0
        self.schema_found = 0  # the file's schema version before this open upgraded it
        # Several processes opening a new file at once (compose starts two ingest workers) race for
        # the lock that creating the schema and switching to WAL take: wait for each other.
        deadline = time.monotonic() + 30
        while not read_only:
            try:
                with self._guard():
                    conn = self._conn()
                    self.schema_found = sqlite_schema.upgrade(conn, self.path, STORE_STEPS)
                    self._migrate(conn)
                break
            except StoreUnavailable:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        if read_only:
            with self._guard():
                self.schema_found = sqlite_schema.version_of(self._conn())
            if self.schema_found != len(STORE_STEPS):
                sqlite_schema.check_not_newer(self.path, self.schema_found, STORE_STEPS)
                raise StoreUnavailable(f"{self.path}: schema version {self.schema_found}, not {len(STORE_STEPS)}: "
                                       "open it once with this nongyun (it migrates) before reading it read-only")

    @classmethod
    def from_settings(cls, settings: Settings) -> SqliteStore:
        return cls(Path(settings.data_dir) / "nongyun.sqlite3", settings.tz)

    def _migrate(self, conn: sqlite3.Connection) -> None:
        """Roll up history written before rollups existed, and re-roll days when the zone changed."""
        if conn.execute("SELECT 1 FROM meta WHERE key = 'yield_last'").fetchone() is None:
            with self._write_lock, immediate(conn):
                conn.execute("INSERT OR REPLACE INTO yield_last (device, village, ts) "
                             "SELECT device, village, MAX(ts) FROM yields WHERE device != '' GROUP BY device")
                conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('yield_last', '1')")
        meta = dict(conn.execute("SELECT key, value FROM meta WHERE key LIKE 'rollup%'").fetchall())
        if meta.get("rollups") == "1" and meta.get("rollup_tz") == self.tz.key:
            return  # the usual case: no write lock taken by every process that opens the store
        with self._write_lock, immediate(conn):
            meta = dict(conn.execute("SELECT key, value FROM meta WHERE key LIKE 'rollup%'").fetchall())
            if "rollups" not in meta:
                sqlite_rollups.mark_all_dirty(conn)
            elif meta.get("rollup_tz") != self.tz.key:
                conn.execute("DELETE FROM rollup_1d")
                conn.execute("INSERT OR IGNORE INTO rollup_dirty SELECT DISTINCT metric, hour FROM rollup_1h")
            conn.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                             [("rollups", "1"), ("rollup_tz", self.tz.key)])

    # -- connections ---------------------------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        """This thread's connection. Werkzeug's threaded server starts a thread per request, so the
        connection must end with its thread: the thread-local holder closes it when it is freed."""
        held: _Held | None = getattr(self._local, "held", None)
        if held is None:
            if self.read_only:
                conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=5.0, isolation_level=None,
                                       check_same_thread=False)
            else:
                conn = sqlite3.connect(self.path, timeout=5.0, isolation_level=None, check_same_thread=False)
                conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA cache_size=-16384")  # 16 MiB page cache per connection
            conn.execute("PRAGMA temp_store=MEMORY")
            conn.create_function("local_year", 2, _local_year_sql, deterministic=True)
            held = _Held(conn)
            self._local.held = held
            with self._lock:
                self._all.add(held)
        return held.conn

    @contextmanager
    def _guard(self) -> Iterator[None]:
        """Map sqlite3 errors into the store error tree at the edge.

        Only errors about the values of the records written are ``StoreRejected`` (a constraint, a
        datatype mismatch, a string too big, an integer beyond 64 bits); an ``OperationalError`` is
        never about one record's content: locked, busy, read-only, I/O, full → ``StoreUnavailable``;
        anything else (no such table or column after a bad deploy, a corrupt file, a programming
        error) → ``StoreFault``, held by the pipeline, never split into rejections (issue 11).
        """
        try:
            yield
        except sqlite3.OperationalError as exc:
            msg = str(exc).lower()
            if any(word in msg for word in TRANSIENT_MESSAGES):
                raise StoreUnavailable(f"sqlite: {exc}") from exc
            raise StoreFault(f"sqlite: {exc}") from exc
        except (sqlite3.IntegrityError, sqlite3.DataError) as exc:
            raise StoreRejected(f"sqlite: {exc}") from exc
        except sqlite3.DatabaseError as exc:  # corrupt file, not a database, programming/interface errors
            raise StoreFault(f"sqlite: {type(exc).__name__}: {exc}") from exc
        except sqlite3.Error as exc:  # sqlite3.Warning and the like: a bug of ours, not the data's
            raise StoreFault(f"sqlite: {type(exc).__name__}: {exc}") from exc
        except OverflowError as exc:  # the binding refuses one value (an integer beyond 64 bits)
            raise StoreRejected(f"sqlite: {exc}") from exc

    def _id(self, conn: sqlite3.Connection, table: str, name: str) -> int:
        key = (table, name)
        found = self._ids.get(key)
        if found is not None:
            return found
        conn.execute(f"INSERT OR IGNORE INTO {table} (name) VALUES (?)", (name,))
        row = conn.execute(f"SELECT id FROM {table} WHERE name = ?", (name,)).fetchone()
        self._ids[key] = int(row[0])
        return int(row[0])

    def _names(self, conn: sqlite3.Connection, table: str) -> dict[int, str]:
        return {int(i): str(n) for i, n in conn.execute(f"SELECT id, name FROM {table}")}

    # -- writing -------------------------------------------------------------------------------

    def write(self, batch: Batch) -> None:
        with self._write_lock, self._guard():
            conn = self._conn()
            conn.execute("BEGIN IMMEDIATE")
            try:
                self._write(conn, batch)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                # ids cached inside a rolled-back transaction may not exist
                self._ids.clear()
                raise
            self._writes += 1

    def _write(self, conn: sqlite3.Connection, batch: Batch) -> None:
        if batch.readings:
            self._write_readings(conn, batch.readings)
        if batch.yields:
            now = int(time.time() * 1000)
            conn.executemany(sqlite_records.UPSERT, [sqlite_records.row_of(y, now) for y in batch.yields])
            # each yield device's newest record, so "last seen" never scans the season's harvests
            last: dict[str, tuple[int, int]] = {}
            for y in batch.yields:
                if y.device and (y.device not in last or y.ts >= last[y.device][1]):
                    last[y.device] = (int(y.village), y.ts)
            conn.executemany(UPSERT_YIELD_LAST, [(d, v, ts) for d, (v, ts) in last.items()])
        if batch.statuses:
            conn.executemany(UPSERT_STATUS, [
                (s.device, int(s.village) if s.village else 0, int(s.online), s.ts) for s in batch.statuses
            ])
        if batch.rejections:
            sqlite_rejections.store(conn, batch.rejections)  # every one counted, a bounded few kept
        worker = batch.worker or "-"
        counts: dict[str, int] = {
            "received": batch.messages,
            "accepted": len(batch.readings) + len(batch.yields) + len(batch.statuses),
        }
        for j in batch.rejections:
            counts["rejected:" + j.reason] = counts.get("rejected:" + j.reason, 0) + 1
        conn.executemany(ADD_COUNTER, [(worker, k, v) for k, v in counts.items() if v])
        conn.execute(SET_COUNTER, (worker, "last_commit", int(time.time() * 1000)))

    def _write_readings(self, conn: sqlite3.Connection, readings: list[Reading]) -> None:
        """Readings as one JSON document and two statements, each one ``sqlite3_step``.

        Why: ``executemany`` releases and re-takes the GIL around every row, and paho's network
        thread always wants it back, so each of a batch's ~14,000 values waited for it; one step per
        statement does the per-value work in SQLite with the GIL released, beside the network thread
        (bench/README.md). Python touches each reading once, never each value. A document that will
        not serialize, or a value SQLite refuses (NaN, infinity and None become JSON null), goes the
        row-by-row way, which stores or refuses exactly as it always has.
        """
        hours: set[int] = set()
        names: dict[str, float] = {}  # every metric of the batch, in order of first appearance (ids)
        doc: list[tuple[int, int, int, dict[str, float]]] = []
        device_id, hour_ms = self._id, sqlite_rollups.HOUR_MS
        for r in readings:
            doc.append((device_id(conn, "device_ids", r.device), int(r.village), r.ts, r.values))
            hours.add(r.ts - r.ts % hour_ms)
            names.update(r.values)
        if not names:
            return  # readings without values write nothing, as row by row
        metric_ids = [self._id(conn, "metric_ids", name) for name in names]
        text: bytes | None = None
        if self.bulk_readings:
            with suppress(TypeError):  # e.g. an integer beyond 64 bits: row by row says what happens
                text = orjson.dumps(doc)
        if text is not None:
            try:
                conn.execute(UPSERT_READINGS_JSON, (text,))
            except sqlite3.IntegrityError:  # the statement is undone; the row-by-row way says what failed
                text = None
        if text is None:
            self._write_readings_rows(conn, readings)
        else:
            conn.execute(UPSERT_LATEST_JSON, (text,))
        # Every hour of the batch × every metric of the batch: a superset of what was touched (a
        # batch spans an hour or two), and recomputing an untouched window is harmless.
        conn.executemany(sqlite_rollups.MARK_DIRTY, [(m, h) for m in metric_ids for h in hours])

    def _write_readings_rows(self, conn: sqlite3.Connection, readings: list[Reading]) -> None:
        rows: list[tuple[int, int, int, int, float]] = []
        newest: dict[tuple[int, int], tuple[int, int, float]] = {}
        for r in readings:
            device = self._id(conn, "device_ids", r.device)
            village = int(r.village)
            for metric_name, value in r.values.items():
                metric = self._id(conn, "metric_ids", metric_name)
                rows.append((metric, r.ts, village, device, value))
                key = (device, metric)
                seen = newest.get(key)
                if seen is None or r.ts >= seen[0]:
                    newest[key] = (r.ts, village, value)
        conn.executemany(UPSERT_READING, rows)
        conn.executemany(UPSERT_LATEST, [(d, m, ts, v, val) for (d, m), (ts, v, val) in newest.items()])

    # -- queries -------------------------------------------------------------------------------

    def _query(self, sql: str, params: Any = ()) -> list[Any]:
        with self._guard():
            return self._conn().execute(sql, params).fetchall()

    def readings(self, q: ReadingsQuery) -> Series:
        conn = self._conn()
        metric = self._ids.get(("metric_ids", q.metric))
        if metric is None:
            row = self._query("SELECT id FROM metric_ids WHERE name = ?", (q.metric,))
            if not row:
                return {}
            metric = int(row[0][0])
        key_sql = "device" if q.group_by == "device" else f"village / {GROUP_DIVISOR[q.group_by]}"
        villages = q.region.village_range()  # the index range of the region's villages
        # Window starts as closed forms per piece of the range (one piece unless the zone's offset
        # changes in it), so SQLite labels rows itself, across a DST change too.
        pieces = window_pieces(q.start, q.end, q.every, q.tz)
        hours_ok = boundary_gcd(q.start, pieces, q.every) % sqlite_rollups.HOUR_MS == 0
        out: Series = {}
        with self._guard():
            # One read snapshot for the plan and the data: the dirty set and the rollups agree.
            conn.execute("BEGIN")
            try:
                parts = sqlite_rollups.plan(conn, metric, q.start, q.end, q.every, hours_ok,
                                            q.tz.key == self.tz.key, self.tz)
                rows = sqlite_rollups.read(conn, parts, metric, key_sql, villages, q.every, pieces, q.agg,
                                           self.stats)
            finally:
                conn.execute("COMMIT")
        for k, w, v in rows:
            out.setdefault(str(k), []).append((int(w), float(v)))
        if q.group_by == "device":
            names = self._names(conn, "device_ids")
            out = {names[int(k)]: v for k, v in out.items()}
        return out

    def yields(self, q: YieldsQuery) -> list[YieldTotals]:
        params: list[Any] = []
        if q.group_by in GROUP_DIVISOR:
            key_sql = f"village / {GROUP_DIVISOR[q.group_by]}"
        elif q.group_by == "year":
            key_sql = "local_year(ts, ?)"
            params.append(q.tz.key)
        else:
            key_sql = q.group_by  # device or crop: column names, from a closed set
        where = "ts >= ? AND ts < ? AND village BETWEEN ? AND ? AND " + _status_sql(q)
        params += [q.start, q.end, *q.region.village_range()]
        if q.crop is not None:
            where += " AND crop = ?"
            params.append(q.crop)
        rows = self._query(
            f"SELECT {key_sql} AS k, COUNT(*), SUM(area_ha), SUM(yield_kg) FROM yields WHERE {where} "
            "GROUP BY k ORDER BY k", params)
        return [YieldTotals(str(k), int(n), float(a), float(y)) for k, n, a, y in rows]

    def yields_unattributed(self, q: YieldsQuery) -> int:
        where = "ts >= ? AND ts < ? AND village BETWEEN ? AND ? AND source = ? AND " + _status_sql(q)
        params: list[Any] = [q.start, q.end, *q.region.village_range(), SOURCE_UNATTRIBUTED]
        if q.crop is not None:
            where += " AND crop = ?"
            params.append(q.crop)
        return int(self._query(f"SELECT COUNT(*) FROM yields WHERE {where}", params)[0][0])

    def yield_records(self, region: InRegion, start: int, end: int, limit: int = 500) -> list[YieldRecord]:
        return self._yield_rows(region.village_range(), start, end, limit)

    def _yield_rows(self, villages: tuple[int, int], start: int, end: int, limit: int,
                    void: bool = False) -> list[YieldRecord]:
        """``void``: void records too (``nongyun migrate`` copies everything)."""
        rows = self._query(
            f"SELECT {sqlite_records.COLUMNS} FROM yields WHERE village BETWEEN ? AND ? AND ts >= ? AND ts < ? "
            f"AND (? OR {sqlite_records.NOT_VOID}) ORDER BY ts DESC, id DESC LIMIT ?",
            (villages[0], villages[1], start, end, void, limit))
        return [sqlite_records.record_of(r) for r in rows]

    # -- harvest records (issue 18) --------------------------------------------------------------------

    def list_records(self, q: RecordsQuery) -> list[YieldRecord]:
        with self._guard():
            return sqlite_records.list_records(self._conn(), q)

    def get_record(self, record_id: str) -> YieldRecord | None:
        with self._guard():
            return sqlite_records.get_record(self._conn(), record_id)

    def save_record(self, rec: YieldRecord, revision: Revision, replaces: YieldRecord | None = None) -> None:
        self.save_records([(rec, revision, replaces)])

    def save_records(self, items: list[tuple[YieldRecord, Revision, YieldRecord | None]]) -> None:
        now = int(time.time() * 1000)
        with self._tx() as conn:
            for rec, revision, replaces in items:
                sqlite_records.save_record(conn, rec, revision, replaces, now)

    def record_history(self, record_id: str) -> list[Revision]:
        with self._guard():
            return sqlite_records.history(self._conn(), record_id)

    def latest(self, region: InRegion, since: int) -> dict[str, DeviceLatest]:
        conn = self._conn()
        lo, hi = region.village_range()
        out: dict[str, DeviceLatest] = {}
        rows = self._query("SELECT device, metric, ts, value FROM latest WHERE village BETWEEN ? AND ? AND ts >= ?",
                           (lo, hi, since))
        # names after rows: an id is committed with the first row that uses it, so none is missing
        devices = self._names(conn, "device_ids")
        metrics = self._names(conn, "metric_ids")
        for device, metric, ts, value in rows:
            entry = out.setdefault(devices[device], DeviceLatest(devices[device]))
            entry.values[metrics[metric]] = (int(ts), float(value))
            entry.last_seen = max(entry.last_seen or 0, int(ts))
        for device, ts in self._query(
                "SELECT device, ts FROM yield_last WHERE village BETWEEN ? AND ? AND ts >= ?", (lo, hi, since)):
            entry = out.setdefault(device, DeviceLatest(device))
            entry.last_seen = max(entry.last_seen or 0, int(ts))
        for device, online, ts in self._query(
                "SELECT device, online, ts FROM device_status WHERE village BETWEEN ? AND ?", (lo, hi)):
            entry = out.setdefault(device, DeviceLatest(device))
            entry.status, entry.status_ts = bool(online), int(ts)
            if ts >= since:
                entry.last_seen = max(entry.last_seen or 0, int(ts))
        return out

    def rejections(self, limit: int = 100, reason: str | None = None, device: str | None = None) -> list[Rejection]:
        where, params = [], []
        if reason is not None:
            where.append("reason = ?")
            params.append(reason)
        if device is not None:
            where.append("device = ?")
            params.append(device)
        sql = "SELECT ts, topic, device, reason, detail, payload FROM rejections"
        if where:
            sql += " WHERE " + " AND ".join(where)
        rows = self._query(sql + " ORDER BY id DESC LIMIT ?", [*params, limit])
        return [Rejection(int(ts), t, d, r, de, p) for ts, t, d, r, de, p in rows]

    def counters(self) -> IngestCounters:
        received = accepted = 0
        rejected: dict[str, int] = {}
        workers: dict[str, int] = {}
        for worker, name, value in self._query("SELECT worker, name, value FROM counters"):
            if name == "received":
                received += value
            elif name == "accepted":
                accepted += value
            elif name == "last_commit":
                workers[worker] = int(value)
            elif name.startswith("rejected:"):
                reason = name.split(":", 1)[1]
                rejected[reason] = rejected.get(reason, 0) + int(value)
        return IngestCounters(received, accepted, rejected, workers)

    def apply_retention(self, raw: int | None, rollups: int | None, rejections: int | None,
                        counters: int | None) -> dict[str, int]:
        """Delete what is older than each cutoff (UTC ms; None keeps it), one metric per transaction so
        ingest waits briefly. Raw points stay in hours whose rollup is not computed yet (dirty)."""
        deleted: dict[str, int] = {}

        def add(kind: str, n: int) -> None:
            if n > 0:
                deleted[kind] = deleted.get(kind, 0) + n

        if raw is not None:
            for (metric,) in self._query("SELECT id FROM metric_ids"):
                with self._tx() as conn:
                    dirty = conn.execute("SELECT MIN(hour) FROM rollup_dirty WHERE metric = ?", (metric,)).fetchone()[0]
                    upto = raw if dirty is None else min(raw, int(dirty))
                    add("readings", conn.execute("DELETE FROM readings WHERE metric = ? AND ts < ?",
                                                 (metric, upto)).rowcount)
            with self._tx() as conn:
                add("yields", conn.execute("DELETE FROM yields WHERE ts < ?", (raw,)).rowcount)
        if rollups is not None:
            with self._tx() as conn:
                add("rollups", conn.execute("DELETE FROM rollup_1h WHERE hour < ?", (rollups,)).rowcount)
                # a day goes when it ended before the cutoff (its key is its UTC start, at most 25 h long)
                add("rollups", conn.execute("DELETE FROM rollup_1d WHERE day < ?",
                                            (rollups - 25 * 3_600_000,)).rowcount)
        if rejections is not None:
            with self._tx() as conn:
                add("rejections", sqlite_rejections.delete_before(conn, rejections))
        if counters is not None:
            with self._tx() as conn:
                add("counters", conn.execute("DELETE FROM rejection_counts WHERE last_ts < ?", (counters,)).rowcount)
                add("counters", conn.execute(
                    "DELETE FROM counters WHERE worker IN (SELECT worker FROM counters WHERE name = 'last_commit' "
                    "AND value < ?)", (counters,)).rowcount)
        return deleted

    def rejection_counts(self) -> dict[tuple[str, str], int]:
        """Exact rejection counts per (device, reason); ids that are not devices count under ``*``."""
        with self._guard():
            return sqlite_rejections.counts(self._conn())

    # -- rollups and alerts (issue 5) ----------------------------------------------------------------

    def refresh_rollups(self, max_windows: int = 500) -> RollupProgress:
        with self._tx() as conn:
            done, remaining = sqlite_rollups.refresh(conn, self.tz, max_windows)
        return RollupProgress(done, remaining)

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._write_lock, self._guard(), immediate(self._conn()) as conn:
            yield conn

    def open_alert(self, alert: Alert) -> Alert | None:
        with self._tx() as conn:
            return sqlite_alerts.open_alert(conn, alert)

    def clear_alert(self, key: str, ts: int) -> Alert | None:
        with self._tx() as conn:
            return sqlite_alerts.clear_alert(conn, key, ts)

    def ack_alert(self, alert_id: int, by: str, ts: int) -> Alert:
        with self._tx() as conn:
            return sqlite_alerts.ack_alert(conn, alert_id, by, ts)

    def get_alert(self, alert_id: int) -> Alert | None:
        with self._guard():
            return sqlite_alerts.get_alert(self._conn(), alert_id)

    def list_alerts(self, region: InRegion, active: bool | None = None, limit: int = 500) -> list[Alert]:
        with self._guard():
            return sqlite_alerts.list_alerts(self._conn(), region.village_range(), active, limit)

    def undelivered_alerts(self, channel: AlertChannel, limit: int = 500) -> list[Alert]:
        with self._guard():
            return sqlite_alerts.undelivered(self._conn(), channel, limit)

    def mark_delivered(self, alert_id: int, channel: AlertChannel, version: int) -> None:
        with self._tx() as conn:
            sqlite_alerts.mark_delivered(conn, alert_id, channel, version)

    def ping(self) -> dict[str, object]:
        try:
            self._query("SELECT 1")
            size = self.path.stat().st_size if self.path.exists() else 0
            return {"ok": True, "backend": "sqlite", "path": str(self.path), "size_bytes": size}
        except Exception as exc:  # a health probe reports, never raises
            return {"ok": False, "backend": "sqlite", "path": str(self.path), "error": str(exc)}

    def export_batches(self, size: int = 20_000) -> Iterator[tuple[Batch, int, int]]:
        """Every stored point as batches of about ``size`` records, with (done, total) counts, for
        ``nongyun migrate``: readings grouped back into one record per (device, village, ts)."""
        from ..records import Reading, StatusChange

        conn = self._conn()
        devices = self._names(conn, "device_ids")
        metrics = self._names(conn, "metric_ids")
        total = int(self._query("SELECT COUNT(*) FROM (SELECT 1 FROM readings GROUP BY device, village, ts)")[0][0])
        total += int(self._query("SELECT COUNT(*) FROM yields")[0][0])
        done = 0
        batch = Batch(worker="migrate")
        current: tuple[int, int, int] | None = None
        values: dict[str, float] = {}
        with self._guard():
            rows = conn.execute("SELECT device, village, ts, metric, value FROM readings ORDER BY device, village, ts")
            for device, village, ts, metric, value in rows:
                key = (device, village, ts)
                if key != current:
                    if current is not None:
                        batch.readings.append(Reading(devices[current[0]], str(current[1]), current[2], values))
                        done += 1
                        if len(batch) >= size:
                            yield batch, done, total
                            batch = Batch(worker="migrate")
                    current, values = key, {}
                values[metrics[metric]] = value
            if current is not None:
                batch.readings.append(Reading(devices[current[0]], str(current[1]), current[2], values))
                done += 1
        batch.yields.extend(self._yield_rows((0, 999_999_999_999), 0, 2**62, 2**62, void=True))  # every district
        done += len(batch.yields)
        for device, village, online, ts in self._query("SELECT device, village, online, ts FROM device_status"):
            batch.statuses.append(StatusChange(device, int(ts), bool(online), str(village)))
        yield batch, done, total

    def close(self) -> None:
        with self._lock:
            for held in list(self._all):
                held.close()
            self._all.clear()
        self._local = threading.local()
