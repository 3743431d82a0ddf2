"""Our records as InfluxDB line protocol, built with f-strings (MEASUREMENTS.md: ``Point`` is 8× slower).

Schema (a field's type never changes, or InfluxDB answers 422 "field type conflict" forever after):

    telemetry       tags device, district, township, village      one float field per metric
    yield           tags crop, device?, district, entry, plot?,    float area_ha, yield_kg, moisture_pct?,
                    status, township, village                      revision, updated; strings source, entered_by
    yield_revision  tag entry; point time = at (ms) + revision ns  float revision, at; strings by, reason,
                                                                   changes (JSON), status
    device_status   tag device                                     float online (1/0); string village
    rejection       tags device?, reason                           strings detail, payload, topic
    ingest_counter  tags reason?, worker                           cumulative floats received, accepted,
                                                                   rejected (per reason)
    rollup_state    (no tags), one point per UTC hour written to   integers dirty (set by write), rolled
                                                                   (set by refresh_rollups)
    rollup_meta     (no tags), one point at the epoch               integer backfilled
    alert           tags key, kind, village; point time = the      strings severity, message, device?,
                    alert's id in µs                               acked_by?; integers raised_at,
                                                                   cleared_at?, acked_at?, mqtt_version?,
                                                                   webhook_version?; floats value?, threshold?

``?`` marks a tag that is left out when empty: InfluxDB has no empty tag values, and reading a
missing tag back gives "", which is what the record held. ``device_status`` keeps its village as a
field, not a tag, so a device that moves stays one series whose newest point says where it is.

Every timestamp is written in nanoseconds. Rejections get a per-process sequence number in the
sub-millisecond digits: two rejections of the same device and reason in one millisecond stay two
points (the embedded store keeps every row), and newest-first keeps the order they arrived in.

Text that may hold anything (plot ids, rejected payloads) passes through ``enc``: line protocol can
carry neither a newline in any value nor a backslash at the end of a tag value, so ``%``, ``\\``,
CR and LF become ``%25``, ``%5C``, ``%0D``, ``%0A``; ``dec`` restores them when reading. Ordinary
codes and names are unchanged by it, so query parameters compare equal after the same ``enc``.
"""

from __future__ import annotations

import itertools
import math
import re
import threading
from collections.abc import Iterable
from functools import lru_cache

import orjson

from ..errors import StoreRejected
from ..records import Batch, Reading, Rejection, Revision, StatusChange, YieldRecord
from ..regions import district_of, township_of

MS_NS = 1_000_000
_ENC = str.maketrans({"%": "%25", "\\": "%5C", "\r": "%0D", "\n": "%0A"})
_DEC = re.compile(r"%(25|5C|0D|0A)")
_DEC_MAP = {"25": "%", "5C": "\\", "0D": "\r", "0A": "\n"}
_TAG = str.maketrans({",": "\\,", "=": "\\=", " ": "\\ "})
# Longest string field we send: InfluxDB caps string fields at 64 KiB; a rejected payload is only
# kept for the operator to look at, so its tail can go.
MAX_STRING_CHARS = 16_384


def enc(text: str) -> str:
    return text.translate(_ENC)


def dec(text: str) -> str:
    return _DEC.sub(lambda m: _DEC_MAP[m.group(1)], text) if "%" in text else text


@lru_cache(maxsize=65_536)  # device ids, village codes and metric names repeat on every line
def tag(text: str) -> str:
    """A tag key or value: reversible ``enc``, then line-protocol escapes for comma, ``=`` and space."""
    return enc(text).translate(_TAG)


@lru_cache(maxsize=4_096)
def field_key(text: str) -> str:
    return enc(text).translate(_TAG)


def string_value(text: str) -> str:
    # After enc() no backslash is left, so only the quote needs escaping.
    return '"' + enc(text[:MAX_STRING_CHARS]).replace('"', '\\"') + '"'


def float_value(value: float) -> str:
    v = float(value)
    if not math.isfinite(v):
        raise StoreRejected(f"value {value!r} is not a finite number", reason="store_rejected")
    return repr(v)


class Sequence:
    """Sub-millisecond sequence numbers (0..999_999) for points that must not collapse."""

    def __init__(self) -> None:
        self._counter = itertools.count()
        self._lock = threading.Lock()

    def next(self) -> int:
        with self._lock:
            return next(self._counter) % MS_NS


@lru_cache(maxsize=65_536)
def _location(village: str) -> str:
    return f"district={tag(district_of(village))},township={tag(township_of(village))},village={tag(village)}"


def reading_line(r: Reading) -> str:
    fields = ",".join(f"{field_key(k)}={float_value(v)}" for k, v in r.values.items())
    if not fields:
        raise StoreRejected(f"reading of {r.device} at {r.ts} has no values", reason="store_rejected")
    return f"telemetry,device={tag(r.device)},{_location(r.village)} {fields} {r.ts * MS_NS}"


def yield_line(y: YieldRecord) -> str:
    """The record's point: its id (``entry``) and ``status`` are tags, so a correction can delete
    exactly this point and aggregates filter void records in storage."""
    tags = f"crop={tag(y.crop)}"
    if y.device:
        tags += f",device={tag(y.device)}"
    tags += f",district={tag(district_of(y.village))},entry={tag(y.record_id)}"
    if y.plot:
        tags += f",plot={tag(y.plot)}"
    tags += f",status={tag(y.status)},township={tag(township_of(y.village))},village={tag(y.village)}"
    fields = f"area_ha={float_value(y.area_ha)},entered_by={string_value(y.entered_by)}"
    if y.moisture_pct is not None:
        fields += f",moisture_pct={float_value(y.moisture_pct)}"
    fields += (f",revision={float_value(y.revision)},source={string_value(y.source)},"
               f"updated={float_value(y.updated or y.ts)},yield_kg={float_value(y.yield_kg)}")
    return f"yield,{tags} {fields} {y.ts * MS_NS}"


def revision_line(r: Revision) -> str:
    """One revision, kept for ever; the revision number in the sub-millisecond digits keeps two
    revisions of one millisecond apart."""
    return (f"yield_revision,entry={tag(r.record)} at={float_value(r.at)},by={string_value(r.by)},"
            f"changes={string_value(orjson.dumps(r.changes).decode())},reason={string_value(r.reason)},"
            f"revision={float_value(r.revision)},status={string_value(r.status)} {r.at * MS_NS + r.revision}")


def status_line(s: StatusChange) -> str:
    return (f"device_status,device={tag(s.device)} online={1.0 if s.online else 0.0!r},"
            f"village={string_value(s.village)} {s.ts * MS_NS}")


def rejection_line(j: Rejection, seq: int) -> str:
    tags = f",device={tag(j.device)}" if j.device else ""
    return (f"rejection{tags},reason={tag(j.reason or 'unknown')} detail={string_value(j.detail)},"
            f"payload={string_value(j.payload)},topic={string_value(j.topic)} {j.ts * MS_NS + seq}")


def counter_lines(worker: str, totals: dict[str, float], changed: Iterable[str], ts_ns: int) -> list[str]:
    """Cumulative counters of one worker: ``received``/``accepted`` always (the point's time is the
    worker's last commit), ``rejected:<reason>`` only for the reasons this batch changed."""
    w = tag(worker)
    lines = [f"ingest_counter,worker={w} accepted={totals.get('accepted', 0.0)!r},"
             f"received={totals.get('received', 0.0)!r} {ts_ns}"]
    for name in sorted(changed):
        if name.startswith("rejected:"):
            reason = name.split(":", 1)[1]
            lines.append(f"ingest_counter,reason={tag(reason)},worker={w} rejected={totals[name]!r} {ts_ns}")
    return lines


def rollup_state_line(hour_ms: int, name: str, token: int) -> str:
    """``name`` is ``dirty`` (a write touched the hour) or ``rolled`` (the token a refresh copied)."""
    return f"rollup_state {name}={int(token)}i {hour_ms * MS_NS}"


def rollup_ready_line() -> str:
    return "rollup_meta backfilled=1i 0"


AlertField = int | float | str


def alert_line(key: str, kind: str, village: str, time_us: int, fields: dict[str, AlertField | None]) -> str:
    """One alert point, or an update of some of its fields (InfluxDB merges them field by field).
    Python ints are written as integers, floats as floats, so every field keeps one type."""
    parts = []
    for name in sorted(fields):
        value = fields[name]
        if value is None:
            continue
        if isinstance(value, str):
            parts.append(f"{name}={string_value(value)}")
        elif isinstance(value, float):
            parts.append(f"{name}={float_value(value)}")
        else:
            parts.append(f"{name}={int(value)}i")
    return f"alert,key={tag(key)},kind={tag(kind)},village={tag(village)} {','.join(parts)} {time_us * 1000}"


def batch_lines(batch: Batch, seq: Sequence) -> list[str]:
    """Every record of the batch; counters are added by the store, which knows the running totals."""
    lines = [reading_line(r) for r in batch.readings]
    lines += [yield_line(y) for y in batch.yields]
    lines += [status_line(s) for s in batch.statuses]
    lines += [rejection_line(j, seq.next()) for j in batch.rejections]
    return lines


def batch_counts(batch: Batch) -> dict[str, float]:
    """The counter increments of a batch: the same definitions as the embedded store's."""
    counts: dict[str, float] = {
        "received": float(batch.messages),
        "accepted": float(len(batch.readings) + len(batch.yields) + len(batch.statuses)),
    }
    for j in batch.rejections:
        key = "rejected:" + (j.reason or "unknown")
        counts[key] = counts.get(key, 0.0) + 1.0
    return counts
