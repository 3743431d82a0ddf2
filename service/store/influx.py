"""The InfluxDB 2 backend: line protocol through influxdb-client's batching WriteApi, Flux queries.

How ``write`` knows its outcome. The ingest pipeline acknowledges MQTT messages only after
``write`` returns, so ``write`` may not hand points to a background buffer and hope. It still goes
through the client's batching ``WriteApi`` — whose retry (``Retry-After`` honoured, exponential
backoff otherwise, 429/5xx/connection errors only), background writer thread and callbacks we keep —
but it feeds that API whole requests and waits for their callbacks:

- the batch becomes line protocol, cut into chunks of ``influxdb.batch_size`` lines; each chunk is
  one item of the WriteApi, whose window is one item (``batch_size=1`` there), so a chunk is posted
  at once instead of waiting ``flush_interval`` (that wait would only add latency to every
  acknowledgement: the ingest pipeline already batches by size and time);
- the success/error callbacks settle a ticket per chunk; ``write`` blocks until all have settled,
  then raises ``StoreUnavailable`` if any chunk failed transiently (429, 5xx or connection after the
  client's retries; 401/403/404 too — a bad token or missing bucket is the operator's to fix, never
  the data's fault) or ``StoreRejected`` for content InfluxDB refused (400 "unable to parse", 422
  field type conflict or beyond retention); any other 400 (invalid precision, no points) is a
  request of ours the server calls malformed, a ``StoreFault`` the pipeline holds. A batch the
  client gives up on therefore never vanishes: the caller keeps it and retries, or rejects it with
  the reason. 413 splits the chunk in halves and posts them again;
- the retry callback counts retries in ``stats`` and logs them; ``ping`` reports those figures.

Writing a point again replaces it, so a batch retried after a partial failure stores nothing twice.
Counters are cumulative per worker (read once, then kept in memory and advanced only after a
successful write), so a retried batch does not count twice either.

Queries are the fixed Flux texts of ``flux.py`` with values passed as ``params``.

The jobs half (``JobsStore``, issue 5): ``write`` marks the UTC hours it touched in
``rollup_state`` and ``refresh_rollups`` downsamples them into the ``_1h`` bucket
(``influx_rollups``), which ``readings`` reads for whole, rolled-up hours; alerts are points of
measurement ``alert`` (``influx_alerts``). The jobs runner's lease stays the data folder's lock file.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from influxdb_client.client.exceptions import InfluxDBError
from influxdb_client.client.influxdb_client import InfluxDBClient
from influxdb_client.client.write_api import WriteOptions, WriteType
from influxdb_client.domain.bucket_retention_rules import BucketRetentionRules as _Rules
from influxdb_client.domain.write_precision import WritePrecision
from influxdb_client.rest import ApiException
from influxdb_client.service.health_service import HealthService
from reactivex.scheduler import ThreadPoolScheduler

from ..errors import StoreError, StoreFault, StoreRejected, StoreUnavailable
from ..records import SOURCE_UNATTRIBUTED, Batch, Rejection, Revision, YieldRecord
from ..times import DAY_MS, local_year, now_ms, window_start, year_bounds
from . import flux, influx_rollups, lineproto, rejection_limits
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
from .influx_alerts import InfluxAlerts
from .influx_records import InfluxRecords, record_of
from .influx_rollups import HOUR_MS

if TYPE_CHECKING:
    from ..settings import Settings

log = logging.getLogger(__name__)
RETENTION_RULES: Any = _Rules  # the vendor class is untyped

TIER_TAGS = {"district", "township", "village", "device"}
DOWNSAMPLED_SUFFIX = "_1h"
CONTENT_STATUSES = {400, 422}  # InfluxDB refuses the content: reject, never retry


@dataclass
class WriteStats:
    """Our own figures of the write path, fed by the WriteApi callbacks."""

    requests_ok: int = 0
    retries: int = 0
    failures: int = 0
    splits: int = 0
    last_error: str = ""

    def as_dict(self) -> dict[str, object]:
        return {"requests_ok": self.requests_ok, "retries": self.retries, "failures": self.failures,
                "splits": self.splits, "last_error": self.last_error}


@dataclass
class _Ticket:
    """The outcome of one posted chunk, settled by a WriteApi callback."""

    lines: list[str]
    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None


def _about_content(exc: BaseException) -> bool:
    """A 400 about the lines themselves ("unable to parse '…': invalid number"), not the request
    (invalid precision, no points): only the former can be one record's fault."""
    return "unable to parse" in _message(exc).lower()


def _status(exc: BaseException) -> int | None:
    status = getattr(exc, "status", None)
    if isinstance(status, int):
        return status
    response = getattr(exc, "response", None)
    code = getattr(response, "status", None)
    return code if isinstance(code, int) else None


def _message(exc: BaseException) -> str:
    msg = getattr(exc, "message", None)
    if isinstance(exc, ApiException) and exc.body:
        try:
            import json

            body = json.loads(exc.body)
            if isinstance(body, dict) and body.get("message"):
                return str(body["message"])
        except (ValueError, TypeError):
            pass
    return str(msg or exc).strip()


def _retry_after(exc: BaseException) -> float | None:
    headers = getattr(exc, "headers", None)
    value = headers.get("Retry-After") if headers else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


Row = dict[str, Any]  # one record of a Flux result: column → value (``result`` and ``table`` included)


def _status_suffix(q: YieldsQuery) -> str:
    """Which variant of an aggregate template: approved records only, or every one not void."""
    return "_approved" if q.status == "approved" else ""


def _col(rec: Row, name: str) -> str:
    return _s(rec.get(name))


def _s(value: Any) -> str:
    """A tag or string column back to our text ("" for a missing tag, i.e. a null cell)."""
    return lineproto.dec(value) if isinstance(value, str) else ""


class InfluxStore:
    name = "influxdb"

    def __init__(self, url: str, token: str, org: str, bucket: str, *, batch_size: int = 5000,
                 flush_interval_ms: int = 1000, retry_interval_ms: int = 1000, max_retries: int = 3,
                 max_retry_time_ms: int = 30_000, timeout_ms: int = 10_000, bootstrap: bool = True,
                 raw_retention_days: int = 0, rollup_retention_days: int = 0) -> None:
        """``*_retention_days``: the expiry given to the raw and the ``_1h`` bucket when this store
        creates them (0: keep forever); settings ``retention.raw_days`` / ``retention.rollup_days``."""
        self.url, self.org, self.bucket = url, org, bucket
        self.retention_s = {bucket: raw_retention_days * 86_400,
                            bucket + DOWNSAMPLED_SUFFIX: rollup_retention_days * 86_400}
        self.rollup_bucket = bucket + DOWNSAMPLED_SUFFIX
        self.batch_size = batch_size
        self.stats = WriteStats()
        self._bootstrap = bootstrap
        self._ready = not bootstrap
        self._client: Any = InfluxDBClient(url=url, token=token, org=org, timeout=timeout_ms)
        self._query_api: Any = self._client.query_api()
        self._scheduler = ThreadPoolScheduler(max_workers=1)  # WriteOptions' default is shared process-wide
        options = WriteOptions(
            write_type=WriteType.batching, batch_size=1, flush_interval=flush_interval_ms,
            retry_interval=retry_interval_ms, max_retries=max_retries, max_retry_delay=max_retry_time_ms,
            max_retry_time=max_retry_time_ms, exponential_base=2, max_close_wait=max_retry_time_ms,
            write_scheduler=self._scheduler)
        # Longest a chunk can stay unsettled: every retry plus a request timeout on each attempt.
        self._settle_timeout_s = (max_retry_time_ms + (max_retries + 2) * timeout_ms) / 1000
        self._write_api: Any = self._client.write_api(
            write_options=options, success_callback=self._on_success, error_callback=self._on_error,
            retry_callback=self._on_retry)
        self._write_lock = threading.Lock()
        self._settle_lock = threading.Lock()
        self._inflight: dict[bytes, list[_Ticket]] = defaultdict(list)
        self._seq = lineproto.Sequence()
        self._totals: dict[str, dict[str, float]] = {}  # worker → cumulative counters written
        self._last_counter_ns = 0
        self._rollups_ready = False  # the rollup state covers all raw data (see influx_rollups)
        self._alerts = InfluxAlerts(self._query, self._post)
        self._records = InfluxRecords(self._query, self._post, self._delete_points)

    @classmethod
    def from_settings(cls, settings: Settings) -> InfluxStore:
        v = settings.values
        return cls(v.influxdb_url, v.influxdb_token, v.influxdb_org, v.influxdb_bucket,
                   batch_size=v.influxdb_batch_size, flush_interval_ms=v.influxdb_flush_interval_ms,
                   raw_retention_days=v.retention_raw_days, rollup_retention_days=v.retention_rollup_days)

    # -- bootstrap ------------------------------------------------------------------------------

    def _ensure_ready(self) -> None:
        """Create the bucket and its hourly downsampled sibling when missing (first use, not start-up,
        so a process started before InfluxDB is up still comes up and reports it in ``ping``)."""
        if self._ready:
            return
        api = self._client.buckets_api()
        try:
            for name in (self.bucket, self.rollup_bucket):
                found = api.find_buckets(name=name, org=self.org).buckets or []
                keep_s = self.retention_s.get(name, 0)
                mine = [b for b in found if b.name == name]
                if not mine:
                    try:  # the retention setting as an expiry rule (0: keep forever)
                        api.create_bucket(bucket_name=name, org=self.org, retention_rules=RETENTION_RULES(
                            type="expire", every_seconds=keep_s))
                        log.info("created InfluxDB bucket %r (retention %s s; 0 = forever)", name, keep_s)
                    except ApiException as exc:
                        if exc.status != 422:  # 422 conflict: another worker created it first
                            raise
                else:
                    rules = getattr(mine[0], "retention_rules", None) or []
                    have = max((int(getattr(r, "every_seconds", 0) or 0) for r in rules), default=0)
                    if have != keep_s:  # an operator's choice on an existing bucket is not overridden
                        log.warning("InfluxDB bucket %r keeps data %s s, the retention setting says %s s: "
                                    "change it with `influx bucket update` if the setting is meant", name, have,
                                    keep_s)
        except Exception as exc:
            raise StoreUnavailable(f"influxdb bootstrap of bucket {self.bucket!r} failed: {_message(exc)}") from exc
        self._ready = True

    # -- writing --------------------------------------------------------------------------------

    def write(self, batch: Batch) -> None:
        self._ensure_ready()
        with self._write_lock:
            worker = batch.worker or "-"
            base = self._counter_base(worker)
            deltas = lineproto.batch_counts(batch)
            totals = dict(base)
            for key, inc in deltas.items():
                totals[key] = totals.get(key, 0.0) + inc
            changed = [k for k, inc in deltas.items() if inc]
            # counted above from every rejection; stored as a few samples per (device, reason) a batch
            sampled = replace(batch, rejections=rejection_limits.first_per_key(batch.rejections))
            lines = lineproto.batch_lines(sampled, self._seq)
            # After the raw points, so a refresh that sees the token also sees the points.
            hours = sorted({r.ts - r.ts % HOUR_MS for r in batch.readings})
            token = secrets.randbits(62)
            lines += [lineproto.rollup_state_line(h, "dirty", token) for h in hours]
            lines += lineproto.counter_lines(worker, totals, changed, self._counter_ns())
            self._post(lines)
            self._totals[worker] = totals

    def _counter_ns(self) -> int:
        ns = now_ms() * lineproto.MS_NS
        self._last_counter_ns = max(ns, self._last_counter_ns + 1)
        return self._last_counter_ns

    def _counter_base(self, worker: str) -> dict[str, float]:
        if worker not in self._totals:
            totals: dict[str, float] = {}
            for rec in self._query("counters_worker", {**self._counter_params(), "_worker": lineproto.enc(worker)}):
                if rec.get("_field") == "rejected":
                    totals["rejected:" + _col(rec, "reason")] = float(rec["_value"])
                else:
                    totals[str(rec.get("_field"))] = float(rec["_value"])
            self._totals[worker] = totals
        return self._totals[worker]

    def _counter_params(self) -> dict[str, object]:
        """The whole time range: ``last()`` is pushed to storage, which reads one point per series."""
        return {"_start": flux.EPOCH, "_stop": flux.FAR_FUTURE}

    def _post(self, lines: list[str]) -> None:
        """Post every line; return once all were stored, else raise the most telling failure."""
        pending = [lines[i:i + self.batch_size] for i in range(0, len(lines), self.batch_size)]
        rejected: StoreRejected | None = None
        unavailable: StoreUnavailable | None = None
        fault: StoreFault | None = None
        while pending:
            tickets = [self._submit(chunk) for chunk in pending]
            pending = []
            for ticket in tickets:
                if not ticket.done.wait(self._settle_timeout_s):
                    unavailable = StoreUnavailable("influxdb write did not complete in time")
                    continue
                exc = ticket.error
                if exc is None:
                    continue
                status = _status(exc)
                if status == 413 and len(ticket.lines) > 1:
                    half = len(ticket.lines) // 2
                    pending += [ticket.lines[:half], ticket.lines[half:]]
                    self.stats.splits += 1
                elif status == 400 and not _about_content(exc):  # e.g. invalid precision: our bug
                    fault = StoreFault(f"influxdb refused the request (400): {_message(exc)}")
                elif status in CONTENT_STATUSES or status == 413:
                    rejected = StoreRejected(f"influxdb refused the batch ({status}): {_message(exc)}",
                                             reason="store_rejected")
                else:
                    where = f"({status})" if status else f"({type(exc).__name__})"
                    unavailable = StoreUnavailable(f"influxdb write failed {where}: {_message(exc)}",
                                                   retry_after_s=_retry_after(exc))
        if unavailable is not None:  # transient wins: retrying later may still store everything
            raise unavailable
        if fault is not None:  # a malformed request is not the data's fault: hold it
            raise fault
        if rejected is not None:
            raise rejected

    def _submit(self, chunk: list[str]) -> _Ticket:
        ticket = _Ticket(chunk)
        data = "\n".join(chunk).encode("utf-8")
        with self._settle_lock:
            self._inflight[data].append(ticket)
        try:
            self._write_api.write(self.bucket, self.org, record=data, write_precision=WritePrecision.NS)
        except Exception as exc:  # the WriteApi was closed or its pipeline is gone
            self._settle(data, exc)
        return ticket

    def _settle(self, data: bytes, exc: BaseException | None) -> None:
        with self._settle_lock:
            waiting = self._inflight.get(data)
            if not waiting:
                return
            ticket = waiting.pop(0)
            if not waiting:
                del self._inflight[data]
        ticket.error = exc
        ticket.done.set()

    def _on_success(self, conf: tuple[str, str, str], data: bytes) -> None:
        self.stats.requests_ok += 1
        self._settle(data, None)

    def _on_error(self, conf: tuple[str, str, str], data: bytes, exc: BaseException) -> None:
        self.stats.failures += 1
        self.stats.last_error = f"{_status(exc) or type(exc).__name__}: {_message(exc)}"[:500]
        log.warning("influxdb write of %d bytes failed: %s", len(data), self.stats.last_error)
        self._settle(data, exc)

    def _on_retry(self, conf: tuple[str, str, str], data: bytes, exc: BaseException) -> None:
        self.stats.retries += 1
        after = getattr(exc, "retry_after", None)
        log.info("influxdb write of %d bytes will be retried%s: %s", len(data),
                 f" after {after}s" if after else "", _message(exc))

    # -- queries --------------------------------------------------------------------------------

    def _query(self, template: str, params: dict[str, object]) -> list[Row]:
        self._ensure_ready()
        try:
            tables = self._query_api.query(flux.TEMPLATES[template], org=self.org,
                                           params={"_bucket": self.bucket, **params})
        except ApiException as exc:
            status = exc.status or 0
            if status == 404:
                self._ready = not self._bootstrap  # bucket gone: create it again on next use
            if status >= 429 or status in (401, 403, 404):
                raise StoreUnavailable(f"influxdb query failed ({status}): {_message(exc)}",
                                       retry_after_s=_retry_after(exc)) from exc
            raise StoreError(f"influxdb query {template} failed ({status}): {_message(exc)}") from exc
        except InfluxDBError as exc:  # an error table in the result stream
            raise StoreError(f"influxdb query {template} failed: {_message(exc)}") from exc
        except Exception as exc:  # connection refused, timeout
            raise StoreUnavailable(f"influxdb query failed: {exc}") from exc
        return [dict(rec.values) for table in tables for rec in table.records]

    def readings(self, q: ReadingsQuery) -> Series:
        if q.start >= q.end:  # Flux refuses an empty range(); the answer is known
            return {}
        by = q.group_by if q.group_by in TIER_TAGS else "village"
        # Flux's windows in the zone, unless a DST change makes it lose points (then finer UTC ones):
        # either way each row is keyed by times.window_start below and merged by Partials.
        every, zone = influx_rollups.flux_windowing(q.tz, q.start, q.end, q.every)
        params = {"_start": flux.ms_time(q.start), "_stop": flux.ms_time(q.end), "_metric": lineproto.enc(q.metric),
                  "_by": by, "_every": timedelta(milliseconds=every), "_tz": zone,
                  **flux.region_params(q.region)}
        parts = self._readings_plan(q) or [("raw", q.start, q.end)]
        return self._readings_in_parts(q, by, params, parts)

    def _readings_plan(self, q: ReadingsQuery) -> list[tuple[str, int, int]] | None:
        """Rollup and raw parts of the range, or None when it is answered from raw points alone."""
        hs, he = -(-q.start // HOUR_MS) * HOUR_MS, q.end // HOUR_MS * HOUR_MS
        if hs >= he or not influx_rollups.whole_hour_windows(q.tz, q.start, q.end, q.every):
            return None
        if not self._rollups_are_ready():
            return None
        dirty = [hour for hour, _ in self._rollup_states(hs, he, pending_only=True)]
        return influx_rollups.plan(q.start, q.end, dirty)

    def _readings_in_parts(self, q: ReadingsQuery, by: str, params: dict[str, object],
                           parts: list[tuple[str, int, int]]) -> Series:
        """Each part's windows per series (aggregated in storage), merged per group and window exactly:
        a mean is Σsum / Σcount of every series and part, never a mean of means."""
        acc = influx_rollups.Partials(q.agg)
        tier = q.region.tier
        for source, lo, hi in parts:
            span = {**params, "_start": flux.ms_time(lo), "_stop": flux.ms_time(hi)}
            queries: list[tuple[str, dict[str, object], str | None]]
            if source == "1h":
                queries = [(f"rollup_readings_{q.agg}@{tier}", {**span, "_bucket": self.rollup_bucket}, None)]
            else:  # the partial aggregates the query's aggregate is made of
                queries = [(f"readings_{part}@{tier}", span, part) for part in influx_rollups.PARTS_OF[q.agg]]
            for template, args, part in queries:
                for rec in self._query(template, args):
                    if rec["_value"] is None:
                        continue
                    # Flux clips the first window to the range start; the contract keys windows by
                    # their aligned start. Rollup rows name their partial in _field.
                    t = window_start(flux.time_ms(rec["_time"]), q.every, q.tz)
                    acc.add(_col(rec, by), t, part or str(rec.get("_field")), float(rec["_value"]))
        return acc.series()

    def yields(self, q: YieldsQuery) -> list[YieldTotals]:
        if q.start >= q.end:
            return []
        if q.group_by == "year":
            span = self._yield_span(q)
            if span is None:
                return []
            out = []
            for year in range(local_year(span[0], q.tz), local_year(span[1], q.tz) + 1):
                lo, hi = year_bounds(year, q.tz)
                lo, hi = max(lo, q.start), min(hi, q.end)
                if lo < hi:
                    out += [YieldTotals(str(year), t.records, t.area_ha, t.yield_kg)
                            for t in self._yield_sums(q, lo, hi, "_measurement")]
            return sorted(out, key=lambda t: t.key)
        return sorted(self._yield_sums(q, q.start, q.end, q.group_by), key=lambda t: t.key)

    def _yield_span(self, q: YieldsQuery) -> tuple[int, int] | None:
        """The first and last harvest of the region in the range: the years worth a query each."""
        params = {"_start": flux.ms_time(q.start), "_stop": flux.ms_time(q.end), **flux.region_params(q.region)}
        first = [flux.time_ms(r["_time"]) for r in self._query(f"yield_first@{q.region.tier}", params)]
        last = [flux.time_ms(r["_time"]) for r in self._query(f"yield_last@{q.region.tier}", params)]
        return (min(first), max(last)) if first and last else None

    def _yield_sums(self, q: YieldsQuery, start: int, end: int, by: str) -> list[YieldTotals]:
        params = {"_start": flux.ms_time(start), "_stop": flux.ms_time(end), "_by": by,
                  **flux.region_params(q.region)}
        name = "yield_sums"
        if q.crop is not None:
            name, params["_crop"] = "yield_sums_crop", lineproto.enc(q.crop)
        template = f"{name}{_status_suffix(q)}@{q.region.tier}"
        acc: dict[str, list[float]] = {}
        for rec in self._query(template, params):
            slot = acc.setdefault(_col(rec, by), [0.0, 0.0, 0.0])
            if rec.get("result") == "count":
                slot[0] = float(rec["_value"])
            elif rec.get("_field") == "area_ha":
                slot[1] = float(rec["_value"])
            elif rec.get("_field") == "yield_kg":
                slot[2] = float(rec["_value"])
        return [YieldTotals(k, int(n), a, y) for k, (n, a, y) in acc.items() if n]

    def yields_unattributed(self, q: YieldsQuery) -> int:
        if q.start >= q.end:
            return 0
        params = {"_start": flux.ms_time(q.start), "_stop": flux.ms_time(q.end), "_source": SOURCE_UNATTRIBUTED,
                  **flux.region_params(q.region)}
        name = "yield_source_count"
        if q.crop is not None:
            name, params["_crop"] = "yield_source_count_crop", lineproto.enc(q.crop)
        template = f"{name}{_status_suffix(q)}@{q.region.tier}"
        return sum(int(rec["_value"]) for rec in self._query(template, params) if rec.get("_value") is not None)

    def yield_records(self, region: InRegion, start: int, end: int, limit: int = 500) -> list[YieldRecord]:
        if start >= end or limit <= 0:
            return []
        params = {"_start": flux.ms_time(start), "_stop": flux.ms_time(end), "_limit": int(limit),
                  **flux.region_params(region)}
        return [record_of(rec) for rec in self._query(f"yield_records@{region.tier}", params)]

    # -- harvest records (issue 18, ``influx_records``) --------------------------------------------------

    def list_records(self, q: RecordsQuery) -> list[YieldRecord]:
        return self._records.listing(q)

    def get_record(self, record_id: str) -> YieldRecord | None:
        return self._records.get(record_id)

    def save_record(self, rec: YieldRecord, revision: Revision, replaces: YieldRecord | None = None) -> None:
        self.save_records([(rec, revision, replaces)])

    def save_records(self, items: list[tuple[YieldRecord, Revision, YieldRecord | None]]) -> None:
        self._ensure_ready()
        with self._write_lock:
            self._records.save(items)

    def record_history(self, record_id: str) -> list[Revision]:
        return self._records.history(record_id)

    def _delete_points(self, start_ms: int, stop_ms: int, predicate: str) -> None:
        """``POST /api/v2/delete`` over [start_ms, stop_ms + 999 µs]: the whole last millisecond, whether
        the server's stop is inclusive or not (our points sit on whole milliseconds)."""
        start, stop = flux.ms_time(start_ms), flux.ms_time(stop_ms) + timedelta(microseconds=999)
        try:
            self._client.delete_api().delete(start, stop, predicate, bucket=self.bucket, org=self.org)
        except ApiException as exc:
            status = exc.status or 0
            if status >= 429 or status in (401, 403, 404):
                raise StoreUnavailable(f"influxdb delete failed ({status}): {_message(exc)}",
                                       retry_after_s=_retry_after(exc)) from exc
            raise StoreFault(f"influxdb delete refused ({status}): {_message(exc)}") from exc
        except Exception as exc:  # connection refused, timeout
            raise StoreUnavailable(f"influxdb delete failed: {exc}") from exc

    def latest(self, region: InRegion, since: int) -> dict[str, DeviceLatest]:
        """``last()`` on pushed filters: storage reads one point per series, whatever the history."""
        out: dict[str, DeviceLatest] = {}
        stop = flux.FAR_FUTURE
        span = {"_start": flux.ms_time(since), "_stop": stop, **flux.region_params(region)}
        values = self._query(f"latest_telemetry@{region.tier}", span)
        values += self._query(f"latest_yield@{region.tier}", span)
        for rec in values:
            device = _col(rec, "device")
            if not device:
                continue
            entry = out.setdefault(device, DeviceLatest(device))
            ts = flux.time_ms(rec["_time"])
            entry.last_seen = max(entry.last_seen or ts, ts)
            if rec.get("_measurement") == "telemetry":
                metric = _col(rec, "_field")
                seen = entry.values.get(metric)
                if seen is None or ts >= seen[0]:
                    entry.values[metric] = (ts, float(rec["_value"]))
        for rec in self._query("latest_status", {"_start": flux.EPOCH, "_stop": stop, **flux.region_params(region)}):
            device = _col(rec, "device")
            entry = out.setdefault(device, DeviceLatest(device))
            ts = flux.time_ms(rec["_time"])
            entry.status, entry.status_ts = bool(rec.get("online")), ts
            if ts >= since:
                entry.last_seen = max(entry.last_seen or ts, ts)
        return out

    def rejections(self, limit: int = 100, reason: str | None = None, device: str | None = None) -> list[Rejection]:
        """Newest first, from the last day, then the last 30 days, then all: rejections pile up, and
        the newest few should not cost a read of every one ever stored."""
        if limit <= 0:
            return []
        variant = "reason_device" if reason is not None and device is not None else (
            "reason" if reason is not None else "device" if device is not None else "all")
        params: dict[str, object] = {"_stop": flux.FAR_FUTURE, "_limit": int(limit)}
        if reason is not None:
            params["_reason"] = lineproto.enc(reason)
        if device is not None:
            params["_device"] = lineproto.enc(device)
        found: list[dict[str, Any]] = []
        now = now_ms()
        for start in (flux.ms_time(now - DAY_MS), flux.ms_time(now - 30 * DAY_MS), flux.EPOCH):
            found = self._query(f"rejections_{variant}", {**params, "_start": start})
            if len(found) >= limit:
                break
        return [Rejection(ts=flux.time_ms(rec["_time"]), topic=_col(rec, "topic"), device=_col(rec, "device"),
                          reason=_col(rec, "reason"), detail=_col(rec, "detail"), payload=_col(rec, "payload"))
                for rec in found]

    def counters(self) -> IngestCounters:
        received = accepted = 0
        rejected: dict[str, int] = {}
        workers: dict[str, int] = {}
        for rec in self._query("counters", self._counter_params()):
            worker, name, value = _col(rec, "worker"), rec.get("_field"), int(rec["_value"])
            if name == "received":
                received += value
                workers[worker] = max(workers.get(worker, 0), flux.time_ms(rec["_time"]))
            elif name == "accepted":
                accepted += value
            elif name == "rejected":
                reason = _col(rec, "reason")
                rejected[reason] = rejected.get(reason, 0) + value
        return IngestCounters(received, accepted, rejected, workers)

    # -- rollups (issue 5) ---------------------------------------------------------------------

    def _rollups_are_ready(self) -> bool:
        if not self._rollups_ready:
            self._rollups_ready = bool(self._query("rollup_ready", {"_start": flux.EPOCH, "_stop": flux.FAR_FUTURE}))
        return self._rollups_ready

    def _rollup_states(self, start: int, stop: int, *, pending_only: bool) -> list[tuple[int, int]]:
        """(hour, dirty token) of the hours in [start, stop) with a state, oldest first."""
        params = {"_start": flux.ms_time(start), "_stop": flux.ms_time(stop), "_pendingOnly": pending_only}
        return [(flux.time_ms(rec["_time"]), int(rec["dirty"])) for rec in self._query("rollup_state", params)
                if rec.get("dirty") is not None]

    def _backfill(self) -> None:
        """Mark every hour of raw data dirty once, so history written before rollups existed (or
        copied in by an older build) is rolled up too; then ``readings`` may trust the state."""
        hours = sorted({flux.time_ms(rec["_time"]) for rec in  # a row per series and hour: each hour once
                        self._query("rollup_backfill", {"_start": flux.EPOCH, "_stop": flux.FAR_FUTURE})})
        token = secrets.randbits(62)
        lines = [lineproto.rollup_state_line(h, "dirty", token) for h in hours]
        self._post([*lines, lineproto.rollup_ready_line()])
        self._rollups_ready = True
        if hours:
            log.info("rollups: %d hours of earlier raw data marked for rolling up", len(hours))

    def refresh_rollups(self, max_windows: int = 500) -> RollupProgress:
        """Downsample up to ``max_windows`` dirty hours (oldest first) into the ``_1h`` bucket; a
        window here is one UTC hour of every metric. Rewriting an hour replaces its points."""
        self._ensure_ready()
        if not self._rollups_are_ready():
            self._backfill()
        states = self._rollup_states(0, flux.time_ms(flux.FAR_FUTURE), pending_only=True)
        todo = states[:max(0, max_windows)]
        for a, b in influx_rollups.runs((h for h, _ in todo), influx_rollups.MAX_HOURS_PER_REFRESH_QUERY):
            self._query("rollup_hours", {"_start": flux.ms_time(a), "_stop": flux.ms_time(b),
                                         "_rollupBucket": self.rollup_bucket})
        if todo:  # only after the hours were rewritten: a token copied earlier would hide them
            self._post([lineproto.rollup_state_line(h, "rolled", token) for h, token in todo])
        return RollupProgress(len(todo), len(states) - len(todo))

    # -- alerts (issue 5) -----------------------------------------------------------------------

    def open_alert(self, alert: Alert) -> Alert | None:
        return self._alerts.open(alert)

    def clear_alert(self, key: str, ts: int) -> Alert | None:
        return self._alerts.clear(key, ts)

    def ack_alert(self, alert_id: int, by: str, ts: int) -> Alert:
        return self._alerts.ack(alert_id, by, ts)

    def get_alert(self, alert_id: int) -> Alert | None:
        return self._alerts.get(alert_id)

    def list_alerts(self, region: InRegion, active: bool | None = None, limit: int = 500) -> list[Alert]:
        return self._alerts.listing(region, active, limit)

    def undelivered_alerts(self, channel: AlertChannel, limit: int = 500) -> list[Alert]:
        return self._alerts.undelivered(channel, limit)

    def mark_delivered(self, alert_id: int, channel: AlertChannel, version: int) -> None:
        self._alerts.mark_delivered(alert_id, channel, version)

    # -- health and lifecycle -------------------------------------------------------------------

    def ping(self) -> dict[str, object]:
        info: dict[str, object] = {"backend": "influxdb", "url": self.url, "org": self.org,
                                   "bucket": self.bucket, "writes": self.stats.as_dict()}
        try:
            service: Any = HealthService
            health = service(self._client.api_client).get_health(_request_timeout=5)
            info.update(ok=health.status == "pass", status=health.status, message=health.message,
                        version=health.version)
        except Exception as exc:  # a health probe reports, never raises
            info.update(ok=False, error=_message(exc)[:300])
        return info

    def close(self) -> None:
        try:
            self._write_api.close()
        finally:
            self._client.close()
            self._scheduler.executor.shutdown(wait=False)
