"""Every Flux query the InfluxDB backend sends: fixed text, with values only as ``params``.

The client sends ``params`` as ``option`` statements in the request's ``extern`` AST, so a region
code, crop or device id is a string literal whatever characters it holds; nothing here is ever
formatted with caller input (tests/test_influx_flux.py checks that the text sent is one of these).
The only variable part of a template's text is the aggregate function of ``readings``, chosen from
the closed set ``base.AGGS``.

Parameter names start with ``_`` so they cannot shadow Flux's own identifiers (``start``, ``every``
or ``count`` would). Village ranges compare the ``village`` tag as a string: codes are fixed-width
12-digit strings, so string order is numeric order.
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

# name → text: what the backend may send, and what the test fake recognises.
TEMPLATES: dict[str, str] = {
    **{f"readings_{agg}": text for agg, text in READINGS.items()},
    "yield_sums": YIELD_SUMS,
    "yield_records": YIELD_RECORDS,
    "latest_values": LATEST_VALUES,
    "latest_status": LATEST_STATUS,
    "rejections": REJECTIONS,
    "counters": COUNTERS,
}


def ms_time(ms: int) -> datetime:
    """UTC epoch ms → the aware datetime the client turns into a Flux DateTimeLiteral."""
    return EPOCH + timedelta(milliseconds=ms)


def time_ms(dt: datetime) -> int:
    return (dt - EPOCH) // timedelta(milliseconds=1)


def village_bounds(villages: tuple[int, int]) -> dict[str, object]:
    lo, hi = villages
    return {"_vlo": f"{max(lo, 0):012d}", "_vhi": f"{min(hi, 999_999_999_999):012d}"}
