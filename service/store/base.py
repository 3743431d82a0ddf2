"""The one interface every store backend implements, and the query/result shapes it speaks.

Contract (DESIGN.md "Storage semantics", checked by tests/store/ against every backend):
- a point is identified by (measurement, tags, time); writing it again replaces it, field by field
  for telemetry (InfluxDB merges fields of the same series and time; the embedded store copies that);
- values are SI (kg, ha) and times UTC epoch milliseconds; local calendar logic takes ``tz``;
- ``write`` is all-or-nothing for a batch where the backend allows it; it raises
  ``StoreUnavailable`` for transient faults (retry, never drop) and ``StoreRejected`` for content
  the store refuses (reject with the reason, never retry);
- region filters are inclusive village-code ranges (``Region.village_range``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol
from zoneinfo import ZoneInfo

from ..records import Batch, Rejection, YieldRecord

Agg = Literal["mean", "min", "max", "sum", "count"]
AGGS: tuple[Agg, ...] = ("mean", "min", "max", "sum", "count")
ReadingsGroup = Literal["district", "township", "village", "device"]
YieldsGroup = Literal["district", "township", "village", "device", "crop", "year"]
# Digits of a village code that make the group key at each tier.
TIER_DIGITS = {"district": 6, "township": 9, "village": 12}


@dataclass(frozen=True)
class ReadingsQuery:
    metric: str
    start: int  # [start, end) UTC ms
    end: int
    every: int  # window length in ms; windows aligned in local time (times.window_start)
    agg: Agg
    villages: tuple[int, int]  # inclusive village-code range
    group_by: ReadingsGroup
    tz: ZoneInfo


Series = dict[str, list[tuple[int, float]]]  # group key → [(window start ms, value)] sorted by time


@dataclass(frozen=True)
class YieldsQuery:
    villages: tuple[int, int]
    start: int  # [start, end) UTC ms; a local calendar year from times.year_bounds, or wider
    end: int
    group_by: YieldsGroup
    tz: ZoneInfo
    crop: str | None = None


@dataclass(frozen=True)
class YieldTotals:
    key: str  # region code, device id, crop id or year (as a string)
    records: int
    area_ha: float
    yield_kg: float


@dataclass
class DeviceLatest:
    """What a backend knows of one device: last point, its latest value of each metric, status."""

    device: str
    last_seen: int | None = None  # UTC ms of the newest point or status message
    values: dict[str, tuple[int, float]] = field(default_factory=dict)  # metric → (ts, value)
    status: bool | None = None  # last retained status: True online, False offline, None never said
    status_ts: int | None = None


@dataclass(frozen=True)
class IngestCounters:
    """Totals over every ingest worker since the store was created."""

    received: int
    accepted: int
    rejected: dict[str, int]  # reason → count
    workers: dict[str, int]  # worker id → UTC ms of its last commit


class Store(Protocol):
    """Lifecycle: built once per process by ``open_store``; ``close`` flushes and releases."""

    name: str

    def write(self, batch: Batch) -> None:
        """Commit every record, rejection and counter of the batch (see the module contract)."""

    def readings(self, q: ReadingsQuery) -> Series:
        """Aggregate ``q.metric`` per group and window; ``mean`` weighs every sample equally."""

    def yields(self, q: YieldsQuery) -> list[YieldTotals]:
        """Σrecords, Σarea and Σyield per group; ratios are the caller's (area-weighted)."""

    def yield_records(self, villages: tuple[int, int], start: int, end: int, limit: int = 500) -> list[YieldRecord]:
        """The individual yield records in a region and time range, newest first."""

    def latest(self, villages: tuple[int, int], since: int) -> dict[str, DeviceLatest]:
        """Per device seen in the region since ``since``: last seen, latest value per metric, status."""

    def rejections(self, limit: int = 100, reason: str | None = None, device: str | None = None) -> list[Rejection]:
        """The most recent rejected inputs, newest first."""

    def counters(self) -> IngestCounters:
        """Ingest counters summed over workers."""

    def ping(self) -> dict[str, object]:
        """Cheap health probe: ``{"ok": bool, ...backend details}``; never raises."""

    def close(self) -> None:
        """Flush pending writes and release connections."""
