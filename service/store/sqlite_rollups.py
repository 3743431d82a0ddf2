"""Hourly and daily rollups of the embedded store, and the query planner that reads them.

Why: a dashboard's "township, hourly, last 90 days" scans ~700,000 raw points per metric; the same
answer from ``rollup_1h`` reads one row per device and hour (MEASUREMENTS.md: 607 ms → 4 ms).

- ``rollup_1h`` / ``rollup_1d`` keep (count, sum, min, max) per (metric, window, village, device):
  every aggregate of a group and a wider window follows exactly (mean = Σsum / Σcount, never a
  mean of means). Days are local days of the store's zone, keyed by their UTC start.
- ``rollup_dirty`` holds the (metric, UTC hour) windows a write touched since they were rolled up:
  ``SqliteStore.write`` adds one row per distinct hour and metric of a batch, ``refresh`` recomputes
  exactly those hours and the local days that contain them, so late data fixes what it touches.
- The planner answers a query from day rollups where whole clean local days fit, from hour rollups
  where whole clean hours fit, and from raw points for the rest (range edges and dirty hours).
  A day counts as clean only when none of its hours is dirty: ``refresh`` rewrites an hour and its
  day (both days, for an hour a local midnight cuts) in one transaction before it forgets the hour.
- Every part is labelled with the window start of ``times.window_start`` through the range's
  ``times.window_pieces``, so a window across a DST change is keyed and filled the same whether it
  was read from raw points or rollups. Hour rollups serve only when no window boundary cuts a UTC
  hour (``times.boundary_gcd``); day rollups when windows are whole local days.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from ..times import DAY_MS, WindowPiece, window_bounds, window_start

HOUR_MS = 3_600_000

SCHEMA = """
CREATE TABLE IF NOT EXISTS rollup_1h (
    metric INTEGER NOT NULL, hour INTEGER NOT NULL, village INTEGER NOT NULL, device INTEGER NOT NULL,
    count INTEGER NOT NULL, sum REAL NOT NULL, min REAL NOT NULL, max REAL NOT NULL,
    PRIMARY KEY (metric, hour, village, device)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rollup_1d (
    metric INTEGER NOT NULL, day INTEGER NOT NULL, village INTEGER NOT NULL, device INTEGER NOT NULL,
    count INTEGER NOT NULL, sum REAL NOT NULL, min REAL NOT NULL, max REAL NOT NULL,
    PRIMARY KEY (metric, day, village, device)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rollup_dirty (
    metric INTEGER NOT NULL, hour INTEGER NOT NULL, PRIMARY KEY (metric, hour)
) WITHOUT ROWID;
"""

MARK_DIRTY = "INSERT OR IGNORE INTO rollup_dirty (metric, hour) VALUES (?, ?)"
ROLL_HOURS = (
    "INSERT INTO rollup_1h (metric, hour, village, device, count, sum, min, max) "
    "SELECT metric, ts - ts % 3600000, village, device, COUNT(*), SUM(value), MIN(value), MAX(value) "
    "FROM readings WHERE metric = ? AND ts >= ? AND ts < ? GROUP BY 2, 3, 4"
)
# One local day from hour rollups when its bounds fall on whole UTC hours (every zone but a few),
# else from raw points. The day key is a constant, so 23- and 25-hour days (DST) need nothing special.
ROLL_DAY_FROM_HOURS = (
    "INSERT INTO rollup_1d (metric, day, village, device, count, sum, min, max) "
    "SELECT metric, ?, village, device, SUM(count), SUM(sum), MIN(min), MAX(max) "
    "FROM rollup_1h WHERE metric = ? AND hour >= ? AND hour < ? GROUP BY village, device"
)
ROLL_DAY_FROM_RAW = (
    "INSERT INTO rollup_1d (metric, day, village, device, count, sum, min, max) "
    "SELECT metric, ?, village, device, COUNT(*), SUM(value), MIN(value), MAX(value) "
    "FROM readings WHERE metric = ? AND ts >= ? AND ts < ? GROUP BY village, device"
)



@dataclass
class QueryStats:
    """What ``readings`` read, kept by the store so tests and benchmarks can see the plan at work."""

    raw_rows: int = 0  # raw samples aggregated
    rollup_rows: int = 0  # rollup rows aggregated
    queries: int = 0

    def reset(self) -> None:
        self.raw_rows = self.rollup_rows = self.queries = 0


def local_day_start(ms: int, tz: ZoneInfo) -> int:
    """The local midnight that starts the day of ``ms``: the key of its day rollup."""
    return window_start(ms, DAY_MS, tz)


def _runs(starts: Iterable[int], step: int) -> list[tuple[int, int]]:
    """Sorted window starts → merged [start, end) ranges of contiguous windows."""
    out: list[tuple[int, int]] = []
    for s in starts:
        if out and out[-1][1] == s:
            out[-1] = (out[-1][0], s + step)
        else:
            out.append((s, s + step))
    return out


def _subtract(lo: int, hi: int, holes: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """[lo, hi) minus sorted, disjoint ``holes``."""
    out: list[tuple[int, int]] = []
    at = lo
    for a, b in holes:
        if a > at:
            out.append((at, min(a, hi)))
        at = max(at, b)
        if at >= hi:
            break
    if at < hi:
        out.append((at, hi))
    return [(a, b) for a, b in out if a < b]


# -- refreshing ------------------------------------------------------------------------------------

def mark_all_dirty(conn: sqlite3.Connection) -> None:
    """Every hour that holds raw points: a store created before rollups existed rolls its history up."""
    conn.execute("INSERT OR IGNORE INTO rollup_dirty (metric, hour) "
                 "SELECT DISTINCT metric, ts - ts % 3600000 FROM readings")


def refresh(conn: sqlite3.Connection, tz: ZoneInfo, max_windows: int) -> tuple[int, int]:
    """Recompute up to ``max_windows`` dirty hours (oldest first) and their local days, inside the
    caller's write transaction; (windows done, windows remaining)."""
    dirty = conn.execute("SELECT metric, hour FROM rollup_dirty ORDER BY hour, metric LIMIT ?",
                         (max_windows,)).fetchall()
    by_metric: dict[int, list[int]] = {}
    for metric, hour in dirty:
        by_metric.setdefault(int(metric), []).append(int(hour))
    for metric, hours in by_metric.items():
        hours.sort()
        for a, b in _runs(hours, HOUR_MS):
            conn.execute("DELETE FROM rollup_1h WHERE metric = ? AND hour >= ? AND hour < ?", (metric, a, b))
            conn.execute(ROLL_HOURS, (metric, a, b))
        # An hour that a local midnight cuts (a zone offset of half an hour) feeds two days.
        days = sorted({local_day_start(t, tz) for h in hours for t in (h, h + HOUR_MS - 1)})
        for day in days:
            _roll_day(conn, tz, metric, day)
    conn.executemany("DELETE FROM rollup_dirty WHERE metric = ? AND hour = ?", dirty)
    remaining = conn.execute("SELECT COUNT(*) FROM rollup_dirty").fetchone()[0]
    return len(dirty), int(remaining)


def next_local_day(day: int, tz: ZoneInfo) -> int:
    """The local midnight after ``day`` (a local midnight): 23, 24 or 25 hours later."""
    return window_bounds(day, DAY_MS, tz)[1]


def _roll_day(conn: sqlite3.Connection, tz: ZoneInfo, metric: int, day: int) -> None:
    end = next_local_day(day, tz)
    conn.execute("DELETE FROM rollup_1d WHERE metric = ? AND day = ?", (metric, day))
    sql = ROLL_DAY_FROM_HOURS if day % HOUR_MS == 0 and end % HOUR_MS == 0 else ROLL_DAY_FROM_RAW
    conn.execute(sql, (day, metric, day, end))


# -- reading ---------------------------------------------------------------------------------------

def _dirty_hours(conn: sqlite3.Connection, metric: int, lo: int, hi: int) -> list[int]:
    return [int(h) for (h,) in conn.execute(
        "SELECT hour FROM rollup_dirty WHERE metric = ? AND hour >= ? AND hour < ? ORDER BY hour", (metric, lo, hi))]


def plan(conn: sqlite3.Connection, metric: int, start: int, end: int, every: int, hours_ok: bool,
         days_ok: bool, tz: ZoneInfo) -> list[tuple[str, int, int]]:
    """Cover [start, end) with (source, lo, hi) parts, source ``1d``, ``1h`` or ``raw``.

    Hour rollups serve only when every window is a union of whole UTC hours (``hours_ok``), day
    rollups only when ``every`` is whole local days of the zone the store rolls days in (``days_ok``)."""
    parts: list[tuple[str, int, int]] = []
    rest = [(start, end)]
    if days_ok and every % DAY_MS == 0:
        first = local_day_start(start, tz)
        ds = first if first == start else next_local_day(first, tz)
        de = local_day_start(end, tz)
        if ds < de:
            # An hour that begins before ds may still end inside the first day (a half-hour zone).
            dirty_days = sorted({local_day_start(t, tz) for h in _dirty_hours(conn, metric, ds - HOUR_MS + 1, de)
                                 for t in (h, h + HOUR_MS - 1) if ds <= t < de})
            holes = [(d, next_local_day(d, tz)) for d in dirty_days]
            parts += [("1d", a, b) for a, b in _subtract(ds, de, holes)]
            rest = [(start, ds), *holes, (de, end)]
    if hours_ok and every % HOUR_MS == 0:
        hourly: list[tuple[int, int]] = []
        for lo, hi in rest:
            hs, he = -(-lo // HOUR_MS) * HOUR_MS, hi // HOUR_MS * HOUR_MS
            if hs >= he:
                parts.append(("raw", lo, hi))
                continue
            holes = _runs(_dirty_hours(conn, metric, hs, he), HOUR_MS)
            hourly += _subtract(hs, he, holes)
            parts += [("raw", lo, hs), ("raw", he, hi), *(("raw", a, b) for a, b in holes)]
        parts += [("1h", a, b) for a, b in hourly]
    else:
        parts += [("raw", lo, hi) for lo, hi in rest]
    return [(src, a, b) for src, a, b in parts if a < b]


_SOURCES = {
    "1d": ("rollup_1d", "day", "SUM(count) AS n, SUM(sum) AS s, MIN(min) AS lo, MAX(max) AS hi, 0 AS raw, "
           "COUNT(*) AS r"),
    "1h": ("rollup_1h", "hour", "SUM(count) AS n, SUM(sum) AS s, MIN(min) AS lo, MAX(max) AS hi, 0 AS raw, "
           "COUNT(*) AS r"),
    "raw": ("readings", "ts", "COUNT(*) AS n, SUM(value) AS s, MIN(value) AS lo, MAX(value) AS hi, "
            "COUNT(*) AS raw, 0 AS r"),
}
# The final aggregate from the merged partials n (count), s (sum), lo (min), hi (max).
FINAL = {"mean": "SUM(s) / SUM(n)", "min": "MIN(lo)", "max": "MAX(hi)", "sum": "SUM(s)", "count": "SUM(n)"}


def _labelled(parts: list[tuple[str, int, int]], pieces: list[WindowPiece]
              ) -> list[tuple[str, int, int, WindowPiece]]:
    """Each part cut where the range's window pieces meet, so each piece of it has one SQL label."""
    out: list[tuple[str, int, int, WindowPiece]] = []
    for source, lo, hi in parts:
        for p in pieces:
            a, b = max(lo, p.lo), min(hi, p.hi)
            if a < b:
                out.append((source, a, b, p))
    return out


def _window_sql(t: str, piece: WindowPiece, every: int) -> tuple[str, list[int]]:
    """The window start of column ``t`` inside ``piece``, as SQL and its parameters."""
    if piece.start is not None:
        return "?", [piece.start]
    return f"(({t} + ?) / ?) * ? - ?", [piece.offset, every, every, piece.offset]


def read(conn: sqlite3.Connection, parts: list[tuple[str, int, int]], metric: int, key_sql: str,
         villages: tuple[int, int], every: int, pieces: list[WindowPiece], agg: str,
         stats: QueryStats) -> list[tuple[int, int, float]]:
    """(group key, window start, value) sorted, from the partials of every part merged exactly
    (Σsum / Σcount across parts and rows), all in one statement so SQLite does the work."""
    labelled = _labelled(parts, pieces)
    if len(labelled) == 1:
        return _read_one(conn, labelled[0], metric, key_sql, villages, every, agg, stats)
    selects: list[str] = []
    params: list[int] = []
    for source, lo, hi, piece in labelled:
        table, t, aggs = _SOURCES[source]
        w_sql, w_params = _window_sql(t, piece, every)
        selects.append(f"SELECT {key_sql} AS k, {w_sql} AS w, {aggs} FROM {table} "
                       f"WHERE metric = ? AND {t} >= ? AND {t} < ? AND village BETWEEN ? AND ? GROUP BY k, w")
        params += [*w_params, metric, lo, hi, villages[0], villages[1]]
    if not selects:
        return []
    sql = (f"SELECT k, w, {FINAL[agg]}, SUM(raw), SUM(r) FROM ({' UNION ALL '.join(selects)}) "
           "GROUP BY k, w ORDER BY k, w")
    stats.queries += 1
    out: list[tuple[int, int, float]] = []
    raw_rows = rollup_rows = 0
    for k, w, value, raw, rows in conn.execute(sql, params):
        out.append((k, w, value))
        raw_rows += raw
        rollup_rows += rows
    stats.raw_rows += raw_rows
    stats.rollup_rows += rollup_rows
    return out


# One part needs no merging: the final aggregate straight from its table.
_DIRECT = {
    "rollup": {"mean": "SUM(sum) / SUM(count)", "min": "MIN(min)", "max": "MAX(max)", "sum": "SUM(sum)",
               "count": "SUM(count)"},
    "raw": {"mean": "AVG(value)", "min": "MIN(value)", "max": "MAX(value)", "sum": "SUM(value)",
            "count": "COUNT(*)"},
}


def _read_one(conn: sqlite3.Connection, part: tuple[str, int, int, WindowPiece], metric: int, key_sql: str,
              villages: tuple[int, int], every: int, agg: str,
              stats: QueryStats) -> list[tuple[int, int, float]]:
    source, lo, hi, piece = part
    table, t, _ = _SOURCES[source]
    final = _DIRECT["raw" if source == "raw" else "rollup"][agg]
    w_sql, w_params = _window_sql(t, piece, every)
    sql = (f"SELECT {key_sql} AS k, {w_sql} AS w, {final}, COUNT(*) FROM {table} "
           f"WHERE metric = ? AND {t} >= ? AND {t} < ? AND village BETWEEN ? AND ? GROUP BY k, w ORDER BY k, w")
    stats.queries += 1
    out: list[tuple[int, int, float]] = []
    rows = 0
    for k, w, value, n in conn.execute(sql, (*w_params, metric, lo, hi, *villages)):
        out.append((k, w, value))
        rows += n
    if source == "raw":
        stats.raw_rows += rows
    else:
        stats.rollup_rows += rows
    return out
