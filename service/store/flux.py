"""Every Flux query the InfluxDB backend sends: fixed text, with values only as ``params``.

The client sends ``params`` as ``option`` statements in the request's ``extern`` AST, so a region
code, crop or device id is a string literal whatever characters it holds; nothing here is ever
formatted with caller input (tests/test_influx_flux.py checks that the text sent is one of these).
The only variable parts of templates' text are aggregate function names and the rollup fields they
read, chosen in this module from the closed set ``base.AGGS``.

Parameter names start with ``_`` so they cannot shadow Flux's own identifiers (``start``, ``every``
or ``count`` would).

Every template that reads raw points starts with what InfluxDB's storage engine can do itself
(the planner's pushdown rules): ``from |> range |> filter`` whose predicate is only ``==``, ``!=``,
``=~`` or ``!~`` comparisons of tags, ``_measurement`` or ``_field`` with a value, joined by ``and``
or ``or``, then ``last()`` or ``aggregateWindow`` directly on that chain. A region is therefore an
equality on the tier's tag that every point carries (``r.township == _region``), one template per
tier, and an optional filter is a template of its own rather than ``not _byX or ...`` (which the
planner cannot push, and after which it pushes nothing else). ``aggregateWindow`` works per series
(in storage when the zone is UTC; InfluxDB 2.7 runs a window in another ``location`` in the query
engine, over the raw points the pushed filter selected: influxdb #24293), and the backend merges
the series of a group exactly (``influx_rollups.Partials``).
tests/test_influx_flux.py checks the shape of every template; the fake InfluxDB counts the points
a query makes storage hand over, by the same planner rules.

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

from .base import TIERS, InRegion, Tier

# The widest range the backend asks for when a query has no natural bounds (latest status,
# rejections, counters): the epoch to 2100, the same limits times.py puts on device timestamps.
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
FAR_FUTURE = datetime(2100, 1, 1, tzinfo=UTC)

# The partial aggregates raw windows are read as: a mean is a sum and a count, merged exactly.
PARTS = ("count", "sum", "min", "max")


def _tiers(text: str) -> dict[Tier, str]:
    """One copy of ``text`` per tier, ``{region}`` replaced by the tier tag's equality."""
    return {tier: text.replace("{region}", f"r.{tier} == _region") for tier in TIERS}


_READINGS = """import "timezone"

from(bucket: _bucket)
  |> range(start: _start, stop: _stop)
  |> filter(fn: (r) => r._measurement == "telemetry" and r._field == _metric and {region})
  |> aggregateWindow(every: _every, fn: {fn}, location: timezone.location(name: _tz),
                     timeSrc: "_start", createEmpty: false)
  |> keep(columns: [_by, "_time", "_value"])
"""

# part → tier → text: one partial aggregate per series and window.
READINGS: dict[str, dict[Tier, str]] = {part: _tiers(_READINGS.replace("{fn}", part)) for part in PARTS}

_YIELDS = """data = () => from(bucket: _bucket)
  |> range(start: _start, stop: _stop)
  |> filter(fn: (r) => r._measurement == "yield" and (r._field == "yield_kg" or r._field == "area_ha")
                       and {region}{crop}{status})

data() |> group(columns: [_by, "_field"]) |> sum() |> yield(name: "sum")
data() |> filter(fn: (r) => r._field == "yield_kg") |> group(columns: [_by, "_field"]) |> count()
  |> yield(name: "count")
"""

# Harvest records (issue 18): aggregates count every record that is not void (a tag, so the filter
# is pushed down); the ``_approved`` variants only approved ones.
NOT_VOID = ' and r.status != "void"'
APPROVED = ' and r.status == "approved"'


def _statuses(text: str, name: str) -> dict[str, str]:
    return {name: text.replace("{status}", NOT_VOID), f"{name}_approved": text.replace("{status}", APPROVED)}


YIELD_SUMS: dict[Tier, str] = _tiers(_YIELDS.replace("{crop}", "").replace("{status}", NOT_VOID))
YIELD_SUMS_CROP: dict[Tier, str] = _tiers(
    _YIELDS.replace("{crop}", " and r.crop == _crop").replace("{status}", NOT_VOID))

# How many yield records of a region were attributed by fallback: their ``source`` field says so.
_YIELD_SOURCE_COUNT = """from(bucket: _bucket)
  |> range(start: _start, stop: _stop)
  |> filter(fn: (r) => r._measurement == "yield" and r._field == "source" and {region}{crop}{status})
  |> filter(fn: (r) => r._value == _source)
  |> group()
  |> count()
"""
YIELD_SOURCE_COUNT: dict[Tier, str] = _tiers(_YIELD_SOURCE_COUNT.replace("{crop}", "").replace("{status}", NOT_VOID))
YIELD_SOURCE_COUNT_CROP: dict[Tier, str] = _tiers(
    _YIELD_SOURCE_COUNT.replace("{crop}", " and r.crop == _crop").replace("{status}", NOT_VOID))
# name → tier → text, for every (template, status filter) of the two aggregates above
YIELD_AGGREGATES: dict[str, dict[Tier, str]] = {
    **{k: _tiers(v) for k, v in _statuses(_YIELDS.replace("{crop}", ""), "yield_sums").items()},
    **{k: _tiers(v) for k, v in _statuses(_YIELDS.replace("{crop}", " and r.crop == _crop"),
                                          "yield_sums_crop").items()},
    **{k: _tiers(v) for k, v in _statuses(_YIELD_SOURCE_COUNT.replace("{crop}", ""), "yield_source_count").items()},
    **{k: _tiers(v) for k, v in _statuses(_YIELD_SOURCE_COUNT.replace("{crop}", " and r.crop == _crop"),
                                          "yield_source_count_crop").items()},
}

# The first and last harvest time of a region: which years group_by=year has to sum.
_YIELD_SPAN = """from(bucket: _bucket)
  |> range(start: _start, stop: _stop)
  |> filter(fn: (r) => r._measurement == "yield" and r._field == "yield_kg" and {region})
  |> {fn}()
  |> keep(columns: ["_time"])
"""
YIELD_FIRST: dict[Tier, str] = _tiers(_YIELD_SPAN.replace("{fn}", "first"))
YIELD_LAST: dict[Tier, str] = _tiers(_YIELD_SPAN.replace("{fn}", "last"))

RECORD_COLUMNS = ('["_time", "village", "device", "crop", "plot", "area_ha", "yield_kg", "moisture_pct", "source", '
                  '"entry", "status", "entered_by", "revision", "updated"]')
YIELD_RECORDS: dict[Tier, str] = _tiers("""from(bucket: _bucket)
  |> range(start: _start, stop: _stop)
  |> filter(fn: (r) => r._measurement == "yield" and {region} and r.status != "void")
  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")
  |> group()
  |> sort(columns: ["_time"], desc: true)
  |> limit(n: _limit)
  |> keep(columns: COLUMNS)
""".replace("COLUMNS", RECORD_COLUMNS))

# A page of records, newest first by (time, entry): the region pushed down, the optional filters and
# the keyset cursor after the pivot (on one row per record, which is what a page reads anyway).
RECORDS_PAGE: dict[Tier, str] = _tiers("""from(bucket: _bucket)
  |> range(start: _start, stop: _stop)
  |> filter(fn: (r) => r._measurement == "yield" and {region})
  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")
  |> group()
  |> filter(fn: (r) => (not _byCrop or r.crop == _crop) and (not _byStatus or r.status == _status)
                       and (not _byPlot or r.plot == _plot)
                       and (not _bySource or r.source == _source1 or r.source == _source2)
                       and (not _byAfter or r._time < _afterTime or (r._time == _afterTime and r.entry < _afterEntry)))
  |> sort(columns: ["_time", "entry"], desc: true)
  |> limit(n: _limit)
  |> keep(columns: COLUMNS)
""".replace("COLUMNS", RECORD_COLUMNS))

# One record by its id (the ``entry`` tag), over all time: its point and, after a redelivery
# raced a correction, any stale copy (the backend keeps the highest revision).
RECORD_BY_ID = """from(bucket: _bucket)
  |> range(start: _start, stop: _stop)
  |> filter(fn: (r) => r._measurement == "yield" and r.entry == _entry)
  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")
  |> group()
  |> sort(columns: ["_time"], desc: true)
  |> keep(columns: COLUMNS)
""".replace("COLUMNS", RECORD_COLUMNS)

# A record's revisions: measurement ``yield_revision``, tag entry, oldest first.
RECORD_REVISIONS = """from(bucket: _bucket)
  |> range(start: _start, stop: _stop)
  |> filter(fn: (r) => r._measurement == "yield_revision" and r.entry == _entry)
  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")
  |> group()
  |> sort(columns: ["revision"])
  |> keep(columns: ["_time", "entry", "revision", "at", "by", "reason", "changes", "status"])
"""

# ``last()`` on a pushed filter: storage reads the newest point of each series, not the history.
LATEST_TELEMETRY: dict[Tier, str] = _tiers("""from(bucket: _bucket)
  |> range(start: _start, stop: _stop)
  |> filter(fn: (r) => r._measurement == "telemetry" and {region})
  |> last()
  |> keep(columns: ["_measurement", "_field", "device", "_time", "_value"])
""")

LATEST_YIELD: dict[Tier, str] = _tiers("""from(bucket: _bucket)
  |> range(start: _start, stop: _stop)
  |> filter(fn: (r) => r._measurement == "yield" and r._field == "yield_kg" and {region})
  |> last()
  |> keep(columns: ["_measurement", "_field", "device", "_time", "_value"])
""")

# A status point's village is a field (a device may move): the region is checked after pivot,
# on one point per device.
LATEST_STATUS = """import "strings"

from(bucket: _bucket)
  |> range(start: _start, stop: _stop)
  |> filter(fn: (r) => r._measurement == "device_status")
  |> last()
  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")
  |> filter(fn: (r) => strings.hasPrefix(v: r.village, prefix: _region))
  |> keep(columns: ["device", "_time", "online", "village"])
"""

_REJECTIONS = """from(bucket: _bucket)
  |> range(start: _start, stop: _stop)
  |> filter(fn: (r) => r._measurement == "rejection"{and})
  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")
  |> group()
  |> sort(columns: ["_time"], desc: true)
  |> limit(n: _limit)
  |> keep(columns: ["_time", "reason", "device", "topic", "detail", "payload"])
"""
REJECTIONS: dict[str, str] = {
    "all": _REJECTIONS.replace("{and}", ""),
    "reason": _REJECTIONS.replace("{and}", " and r.reason == _reason"),
    "device": _REJECTIONS.replace("{and}", " and r.device == _device"),
    "reason_device": _REJECTIONS.replace("{and}", " and r.reason == _reason and r.device == _device"),
}

_COUNTERS = """from(bucket: _bucket)
  |> range(start: _start, stop: _stop)
  |> filter(fn: (r) => r._measurement == "ingest_counter"{and})
  |> last()
  |> keep(columns: ["worker", "reason", "_field", "_time", "_value"])
"""
COUNTERS = _COUNTERS.replace("{and}", "")
COUNTERS_WORKER = _COUNTERS.replace("{and}", " and r.worker == _worker")

ROLLUP_HOURS = """data = () => from(bucket: _bucket)
  |> range(start: _start, stop: _stop)
  |> filter(fn: (r) => r._measurement == "telemetry")

part = (fn, name) => data()
  |> aggregateWindow(every: 1h, fn: fn, timeSrc: "_start", createEmpty: false)
  |> duplicate(column: "_field", as: "metric")
  |> set(key: "_field", value: name)
  |> toFloat()

union(tables: [part(fn: count, name: "count"), part(fn: sum, name: "sum"),
               part(fn: min, name: "min"), part(fn: max, name: "max")])
  |> to(bucket: _rollupBucket, tagColumns: ["device", "district", "metric", "township", "village"])
  |> group()
  |> count()
"""

# Which rollup fields each aggregate reads, and the Flux function that merges them per window.
ROLLUP_FIELDS: dict[str, tuple[tuple[str, ...], str]] = {
    "mean": (("count", "sum"), "sum"), "sum": (("sum",), "sum"), "count": (("count",), "sum"),
    "min": (("min",), "min"), "max": (("max",), "max"),
}

_ROLLUP_READINGS = """import "timezone"

from(bucket: _bucket)
  |> range(start: _start, stop: _stop)
  |> filter(fn: (r) => r._measurement == "telemetry" and r.metric == _metric and ({fields}) and {region})
  |> aggregateWindow(every: _every, fn: {fn}, location: timezone.location(name: _tz),
                     timeSrc: "_start", createEmpty: false)
  |> keep(columns: [_by, "_field", "_time", "_value"])
"""

# agg → tier → text
ROLLUP_READINGS: dict[str, dict[Tier, str]] = {
    agg: _tiers(_ROLLUP_READINGS.replace("{fields}", " or ".join(f'r._field == "{f}"' for f in fields))
                .replace("{fn}", fn))
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

# Hours that hold raw telemetry: a count per series and hour in storage, the hours merged after.
ROLLUP_BACKFILL = """from(bucket: _bucket)
  |> range(start: _start, stop: _stop)
  |> filter(fn: (r) => r._measurement == "telemetry")
  |> aggregateWindow(every: 1h, fn: count, timeSrc: "_start", createEmpty: false)
  |> group()
  |> keep(columns: ["_time"])
"""

_ALERT_COLUMNS = ('["_time", "key", "kind", "village", "severity", "device", "message", "value", "threshold", '
                  '"raised_at", "cleared_at", "acked_at", "acked_by", "mqtt_version", "webhook_version"]')

# An alert point carries only its village tag: the region is a prefix of it, checked after the
# pushed measurement filter (alerts are few; telemetry is what must never be read whole).
_ALERTS = """import "strings"

from(bucket: _bucket)
  |> range(start: _start, stop: _stop)
  |> filter(fn: (r) => r._measurement == "alert"{and})
  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")
  |> filter(fn: (r) => strings.hasPrefix(v: r.village, prefix: _region))
  |> filter(fn: (r) => not _byActive or (exists r.cleared_at) != _active)
  |> group()
  |> sort(columns: ["raised_at", "_time"], desc: true)
  |> limit(n: _limit)
  |> keep(columns: COLUMNS)
""".replace("COLUMNS", _ALERT_COLUMNS)
ALERTS = _ALERTS.replace("{and}", "")
ALERTS_KEY = _ALERTS.replace("{and}", " and r.key == _key")

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


def _per_tier(name: str, texts: dict[Tier, str]) -> dict[str, str]:
    return {f"{name}@{tier}": text for tier, text in texts.items()}


# name → text: what the backend may send, and what the test fake recognises. A name ``x@township``
# is template ``x`` with the township tag's equality as its region filter.
TEMPLATES: dict[str, str] = {
    **{k: v for part, texts in READINGS.items() for k, v in _per_tier(f"readings_{part}", texts).items()},
    **{k: v for name, texts in YIELD_AGGREGATES.items() for k, v in _per_tier(name, texts).items()},
    **_per_tier("yield_first", YIELD_FIRST),
    **_per_tier("yield_last", YIELD_LAST),
    **_per_tier("yield_records", YIELD_RECORDS),
    **_per_tier("records_page", RECORDS_PAGE),
    "record_by_id": RECORD_BY_ID,
    "record_revisions": RECORD_REVISIONS,
    **_per_tier("latest_telemetry", LATEST_TELEMETRY),
    **_per_tier("latest_yield", LATEST_YIELD),
    "latest_status": LATEST_STATUS,
    **{f"rejections_{k}": v for k, v in REJECTIONS.items()},
    "counters": COUNTERS,
    "counters_worker": COUNTERS_WORKER,
    **{k: v for agg, texts in ROLLUP_READINGS.items()
       for k, v in _per_tier(f"rollup_readings_{agg}", texts).items()},
    "rollup_hours": ROLLUP_HOURS,
    "rollup_state": ROLLUP_STATE,
    "rollup_ready": ROLLUP_READY,
    "rollup_backfill": ROLLUP_BACKFILL,
    "alerts": ALERTS,
    "alerts_key": ALERTS_KEY,
    "alerts_undelivered": ALERTS_UNDELIVERED,
}


def region_params(region: InRegion) -> dict[str, object]:
    """The ``_region`` parameter; the tier is in the template's name (``name@tier``)."""
    return {"_region": region.code}


def ms_time(ms: int) -> datetime:
    """UTC epoch ms → the aware datetime the client turns into a Flux DateTimeLiteral."""
    return EPOCH + timedelta(milliseconds=ms)


def time_ms(dt: datetime) -> int:
    return (dt - EPOCH) // timedelta(milliseconds=1)


def us_time(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


def time_us(dt: datetime) -> int:
    return (dt - EPOCH) // timedelta(microseconds=1)
