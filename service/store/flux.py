"""Every Flux query the InfluxDB backend sends: fixed text, with values only as ``params``.

The client sends ``params`` as ``option`` statements in the request's ``extern`` AST, so a region
code, crop or device id is a string literal whatever characters it holds; nothing here is ever
formatted with caller input (tests/test_influx_flux.py checks that the text sent is one of these).
The only variable parts of templates' text are aggregate function names and the rollup fields they
read, chosen in this module from the closed set ``base.AGGS``.

Parameter names start with ``_`` so they cannot shadow Flux's own identifiers (``start``, ``every``
or ``count`` would). Village ranges compare the ``village`` tag as a string: codes are fixed-width
12-digit strings, so string order is numeric order.

Rollups (issue 5). ``rollup_hours`` downsamples raw ``telemetry`` of whole UTC hours into the
``<bucket>_1h`` bucket with ``to()``: one point per (device, metric, hour) in measurement
``telemetry`` with tags device, district, metric, township, village and float fields count, sum,
min, max. Rewriting an hour writes the same points again, so it replaces them; raw points are never
deleted, so a rewritten hour never leaves a stale (device, metric) point behind. ``rollup_readings_*``
read those partials back (``_bucket`` is then the ``_1h`` bucket), merged exactly (Σsum / Σcount).
``rollup_state`` holds one point per hour that raw data was written to: ``dirty`` (a token each
write sets) and ``rolled`` (the token the last refresh copied); an hour is rolled up when they match.
Alerts are points of measurement ``alert`` (see influx_alerts.py); the version of an alert is
1 + acknowledged + cleared, computed where it is read.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from .base import AGGS, Agg

# The widest range the backend asks for when a query has no natural bounds (latest status,
# rejections, counters): the epoch to 2100, the same limits times.py puts on device timestamps.
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
FAR_FUTURE = datetime(2100, 1, 1, tzinfo=UTC)

_READINGS = """import "timezone"

from(bucket: _bucket)
  |> range(start: _start, stop: _stop)
  |> filter(fn: (r) => r._measurement == "telemetry" and r._field == _metric)
  |> filter(fn: (r) => r.village >= _vlo and r.village <= _vhi)
  |> group(columns: [_by])
  |> aggregateWindow(every: _every, fn: {fn}, location: timezone.location(name: _tz),
                     timeSrc: "_start", createEmpty: false)
  |> keep(columns: [_by, "_time", "_value"])
"""

YIELD_SUMS = """data = from(bucket: _bucket)
  |> range(start: _start, stop: _stop)
  |> filter(fn: (r) => r._measurement == "yield" and (r._field == "yield_kg" or r._field == "area_ha"))
  |> filter(fn: (r) => r.village >= _vlo and r.village <= _vhi)
  |> filter(fn: (r) => not _byCrop or r.crop == _crop)
  |> group(columns: [_by, "_field"])

data |> sum() |> yield(name: "sum")
data |> filter(fn: (r) => r._field == "yield_kg") |> count() |> yield(name: "count")
"""

YIELD_RECORDS = """from(bucket: _bucket)
  |> range(start: _start, stop: _stop)
  |> filter(fn: (r) => r._measurement == "yield")
  |> filter(fn: (r) => r.village >= _vlo and r.village <= _vhi)
  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")
  |> group()
  |> sort(columns: ["_time"], desc: true)
  |> limit(n: _limit)
  |> keep(columns: ["_time", "village", "device", "crop", "plot", "area_ha", "yield_kg", "moisture_pct", "source"])
"""

LATEST_VALUES = """from(bucket: _bucket)
  |> range(start: _start, stop: _stop)
  |> filter(fn: (r) => r._measurement == "telemetry" or (r._measurement == "yield" and r._field == "yield_kg"))
  |> filter(fn: (r) => r.village >= _vlo and r.village <= _vhi)
  |> last()
  |> keep(columns: ["_measurement", "_field", "device", "_time", "_value"])
"""

LATEST_STATUS = """from(bucket: _bucket)
  |> range(start: _start, stop: _stop)
  |> filter(fn: (r) => r._measurement == "device_status")
  |> last()
  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")
  |> filter(fn: (r) => r.village >= _vlo and r.village <= _vhi)
  |> keep(columns: ["device", "_time", "online", "village"])
"""

REJECTIONS = """from(bucket: _bucket)
  |> range(start: _start, stop: _stop)
  |> filter(fn: (r) => r._measurement == "rejection")
  |> filter(fn: (r) => not _byReason or r.reason == _reason)
  |> filter(fn: (r) => not _byDevice or (if exists r.device then r.device else "") == _device)
  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")
  |> group()
  |> sort(columns: ["_time"], desc: true)
  |> limit(n: _limit)
  |> keep(columns: ["_time", "reason", "device", "topic", "detail", "payload"])
"""

COUNTERS = """from(bucket: _bucket)
  |> range(start: _start, stop: _stop)
  |> filter(fn: (r) => r._measurement == "ingest_counter")
  |> filter(fn: (r) => not _byWorker or r.worker == _worker)
  |> last()
  |> keep(columns: ["worker", "reason", "_field", "_time", "_value"])
"""

READINGS: dict[Agg, str] = {agg: _READINGS.replace("{fn}", agg) for agg in AGGS}

# A mean over parts of a range (raw edges and dirty hours) needs the partial sums and counts.
READINGS_MEAN_PARTS = """import "timezone"

data = from(bucket: _bucket)
  |> range(start: _start, stop: _stop)
  |> filter(fn: (r) => r._measurement == "telemetry" and r._field == _metric)
  |> filter(fn: (r) => r.village >= _vlo and r.village <= _vhi)
  |> group(columns: [_by])

data
  |> aggregateWindow(every: _every, fn: sum, location: timezone.location(name: _tz),
                     timeSrc: "_start", createEmpty: false)
  |> keep(columns: [_by, "_time", "_value"])
  |> yield(name: "sum")
data
  |> aggregateWindow(every: _every, fn: count, location: timezone.location(name: _tz),
                     timeSrc: "_start", createEmpty: false)
  |> keep(columns: [_by, "_time", "_value"])
  |> yield(name: "count")
"""

ROLLUP_HOURS = """data = from(bucket: _bucket)
  |> range(start: _start, stop: _stop)
  |> filter(fn: (r) => r._measurement == "telemetry")

part = (tables=<-, fn, name) => tables
  |> aggregateWindow(every: 1h, fn: fn, timeSrc: "_start", createEmpty: false)
  |> duplicate(column: "_field", as: "metric")
  |> set(key: "_field", value: name)
  |> toFloat()

union(tables: [data |> part(fn: count, name: "count"), data |> part(fn: sum, name: "sum"),
               data |> part(fn: min, name: "min"), data |> part(fn: max, name: "max")])
  |> to(bucket: _rollupBucket, tagColumns: ["device", "district", "metric", "township", "village"])
  |> group()
  |> count()
"""

# Which rollup fields each aggregate reads, and the Flux function that merges them per window.
ROLLUP_FIELDS: dict[Agg, tuple[tuple[str, ...], str]] = {
    "mean": (("count", "sum"), "sum"), "sum": (("sum",), "sum"), "count": (("count",), "sum"),
    "min": (("min",), "min"), "max": (("max",), "max"),
}

_ROLLUP_READINGS = """import "timezone"

from(bucket: _bucket)
  |> range(start: _start, stop: _stop)
  |> filter(fn: (r) => r._measurement == "telemetry" and r.metric == _metric and ({fields}))
  |> filter(fn: (r) => r.village >= _vlo and r.village <= _vhi)
  |> group(columns: [_by, "_field"])
  |> aggregateWindow(every: _every, fn: {fn}, location: timezone.location(name: _tz),
                     timeSrc: "_start", createEmpty: false)
  |> keep(columns: [_by, "_field", "_time", "_value"])
"""

ROLLUP_READINGS: dict[Agg, str] = {
    agg: _ROLLUP_READINGS.replace("{fields}", " or ".join(f'r._field == "{f}"' for f in fields)).replace("{fn}", fn)
    for agg, (fields, fn) in ROLLUP_FIELDS.items()
}

ROLLUP_STATE = """from(bucket: _bucket)
  |> range(start: _start, stop: _stop)
  |> filter(fn: (r) => r._measurement == "rollup_state")
  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")
  |> filter(fn: (r) => not _pendingOnly or not exists r.rolled or r.rolled != r.dirty)
  |> group()
  |> keep(columns: ["_time", "dirty", "rolled"])
  |> sort(columns: ["_time"])
"""

# Written once the hours of raw data stored before rollups existed are marked dirty: from then on
# an hour without a ``rollup_state`` point holds no raw points, and ``readings`` may trust the state.
ROLLUP_READY = """from(bucket: _bucket)
  |> range(start: _start, stop: _stop)
  |> filter(fn: (r) => r._measurement == "rollup_meta" and r._field == "backfilled")
  |> last()
  |> keep(columns: ["_time", "_value"])
"""

ROLLUP_BACKFILL = """from(bucket: _bucket)
  |> range(start: _start, stop: _stop)
  |> filter(fn: (r) => r._measurement == "telemetry")
  |> group()
  |> aggregateWindow(every: 1h, fn: count, timeSrc: "_start", createEmpty: false)
  |> keep(columns: ["_time"])
"""

_ALERT_COLUMNS = ('["_time", "key", "kind", "village", "severity", "device", "message", "value", "threshold", '
                  '"raised_at", "cleared_at", "acked_at", "acked_by", "mqtt_version", "webhook_version"]')

ALERTS = """from(bucket: _bucket)
  |> range(start: _start, stop: _stop)
  |> filter(fn: (r) => r._measurement == "alert")
  |> filter(fn: (r) => r.village >= _vlo and r.village <= _vhi)
  |> filter(fn: (r) => not _byKey or r.key == _key)
  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")
  |> filter(fn: (r) => not _byActive or (exists r.cleared_at) != _active)
  |> group()
  |> sort(columns: ["raised_at", "_time"], desc: true)
  |> limit(n: _limit)
  |> keep(columns: COLUMNS)
""".replace("COLUMNS", _ALERT_COLUMNS)

# The version of an alert is 1 + acknowledged + cleared (each happens at most once), so no writer
# ever reads-modifies-writes a counter that another process may be changing.
ALERTS_UNDELIVERED = """from(bucket: _bucket)
  |> range(start: _start, stop: _stop)
  |> filter(fn: (r) => r._measurement == "alert")
  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")
  |> filter(fn: (r) => (if _channel == "mqtt" then (if exists r.mqtt_version then r.mqtt_version else 0)
                        else (if exists r.webhook_version then r.webhook_version else 0))
                       < 1 + (if exists r.acked_at then 1 else 0) + (if exists r.cleared_at then 1 else 0))
  |> group()
  |> sort(columns: ["_time"])
  |> limit(n: _limit)
  |> keep(columns: COLUMNS)
""".replace("COLUMNS", _ALERT_COLUMNS)

# name → text: what the backend may send, and what the test fake recognises.
TEMPLATES: dict[str, str] = {
    **{f"readings_{agg}": text for agg, text in READINGS.items()},
    "yield_sums": YIELD_SUMS,
    "yield_records": YIELD_RECORDS,
    "latest_values": LATEST_VALUES,
    "latest_status": LATEST_STATUS,
    "rejections": REJECTIONS,
    "counters": COUNTERS,
    "readings_mean_parts": READINGS_MEAN_PARTS,
    **{f"rollup_readings_{agg}": text for agg, text in ROLLUP_READINGS.items()},
    "rollup_hours": ROLLUP_HOURS,
    "rollup_state": ROLLUP_STATE,
    "rollup_ready": ROLLUP_READY,
    "rollup_backfill": ROLLUP_BACKFILL,
    "alerts": ALERTS,
    "alerts_undelivered": ALERTS_UNDELIVERED,
}


def ms_time(ms: int) -> datetime:
    """UTC epoch ms → the aware datetime the client turns into a Flux DateTimeLiteral."""
    return EPOCH + timedelta(milliseconds=ms)


def time_ms(dt: datetime) -> int:
    return (dt - EPOCH) // timedelta(milliseconds=1)


def us_time(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


def time_us(dt: datetime) -> int:
    return (dt - EPOCH) // timedelta(microseconds=1)


def village_bounds(villages: tuple[int, int]) -> dict[str, object]:
    lo, hi = villages
    return {"_vlo": f"{max(lo, 0):012d}", "_vhi": f"{min(hi, 999_999_999_999):012d}"}
