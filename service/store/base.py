"""The one interface every store backend implements, and the query/result shapes it speaks.

Contract (DESIGN.md "Storage semantics", checked by tests/store/ against every backend):
- a point is identified by (measurement, tags, time); writing it again replaces it, field by field
  for telemetry (InfluxDB merges fields of the same series and time; the embedded store copies that);
- values are SI (kg, ha) and times UTC epoch milliseconds; local calendar logic takes ``tz``;
- ``write`` is all-or-nothing for a batch where the backend allows it; it raises
  ``StoreUnavailable`` for transient faults (retry, never drop) and ``StoreRejected`` for content
  the store refuses (reject with the reason, never retry);
- region filters name a tier and a code (``InRegion``): every point carries its district, township
  and village tags, so InfluxDB filters on tag equality, which its storage engine can push down,
  and SQLite turns the same filter into a range of its integer village index.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol, cast
from zoneinfo import ZoneInfo

from ..records import Batch, Rejection, Revision, YieldRecord
from ..regions import Region

Agg = Literal["mean", "min", "max", "sum", "count"]
AGGS: tuple[Agg, ...] = ("mean", "min", "max", "sum", "count")
ReadingsGroup = Literal["district", "township", "village", "device"]
YieldsGroup = Literal["district", "township", "village", "device", "crop", "year", "plot"]  # plot: "" = none
# Digits of a village code that make the group key at each tier.
TIER_DIGITS = {"district": 6, "township": 9, "village": 12}
Tier = Literal["district", "township", "village"]
TIERS: tuple[Tier, ...] = ("district", "township", "village")


@dataclass(frozen=True)
class InRegion:
    """Everything measured in one region: the tier's tag equals the code (``r.township == "211204101"``)."""

    tier: Tier
    code: str

    def __post_init__(self) -> None:
        if self.tier not in TIER_DIGITS or not (self.code.isascii() and self.code.isdigit()
                                                and len(self.code) == TIER_DIGITS[self.tier]):
            raise ValueError(f"{self.code!r} is not a {self.tier} code of {TIER_DIGITS.get(self.tier)} digits")

    @classmethod
    def of(cls, region: Region) -> InRegion:
        return cls(region.level, region.code)

    @classmethod
    def of_code(cls, code: str) -> InRegion:
        """The tier from the code's length (6, 9 or 12 digits); ValueError for any other."""
        tier = next((t for t, n in TIER_DIGITS.items() if n == len(code)), None)
        if tier is None:
            raise ValueError(f"{code!r} is not a region code of 6, 9 or 12 digits")
        return cls(cast(Tier, tier), code)

    def village_range(self) -> tuple[int, int]:
        """Inclusive range of 12-digit village codes: codes nest by prefix."""
        scale = 10 ** (12 - len(self.code))
        return int(self.code) * scale, int(self.code) * scale + scale - 1

    def contains(self, village: str) -> bool:
        return village.startswith(self.code)


@dataclass(frozen=True)
class ReadingsQuery:
    metric: str
    start: int  # [start, end) UTC ms
    end: int
    every: int  # window length in ms; windows aligned in local time (times.window_start)
    agg: Agg
    region: InRegion
    group_by: ReadingsGroup
    tz: ZoneInfo


Series = dict[str, list[tuple[int, float]]]  # group key → [(window start ms, value)] sorted by time


@dataclass(frozen=True)
class YieldsQuery:
    region: InRegion
    start: int  # [start, end) UTC ms; a local calendar year from times.year_bounds, or wider
    end: int
    group_by: YieldsGroup
    tz: ZoneInfo
    crop: str | None = None
    status: Literal["approved"] | None = None  # None: every record that is not void


@dataclass(frozen=True)
class RecordsQuery:
    """Harvest records newest first, ``(ts, id)`` descending; ``after`` is the last row of the
    previous page (keyset pagination: a page costs the same however deep it lies)."""

    region: InRegion
    start: int
    end: int
    limit: int = 100
    crop: str | None = None
    status: str | None = None  # None: every status, void included
    sources: tuple[str, ...] = ()  # stored source values; () = any
    plot: str | None = None
    after: tuple[int, str] | None = None


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
class RollupProgress:
    """What one ``refresh_rollups`` call did: windows recomputed now and windows still waiting."""

    windows: int  # (metric, hour) windows recomputed by this call
    remaining: int  # dirty windows left for the next call


AlertChannel = Literal["mqtt", "webhook"]


@dataclass(frozen=True)
class Alert:
    """One agronomic or device alert: raised once, then at most acknowledged and cleared.

    ``key`` names what it is about (``rule:subject``, e.g. ``drought:211204101203`` or
    ``device_offline:qh-st-101203-1``): a store holds at most one active alert per key, which is what
    keeps a rule evaluated every few minutes from repeating itself. ``version`` grows with every
    change (raised 1, acknowledged, cleared) so notifiers can tell what they have not sent yet.
    """

    key: str
    kind: str  # drought, frost, waterlogging, heat, device_offline, battery_low
    severity: Literal["info", "warning", "critical"]
    village: str  # 12-digit code of the village it is about (a device's village for device alerts)
    device: str | None
    message: str
    raised_at: int  # UTC ms when the condition began (from the data, not from the job's run)
    value: float | None = None  # the value that raised it
    threshold: float | None = None
    id: int = 0  # assigned by the store
    cleared_at: int | None = None
    acked_at: int | None = None
    acked_by: str | None = None
    version: int = 1

    @property
    def active(self) -> bool:
        return self.cleared_at is None


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

    def yield_records(self, region: InRegion, start: int, end: int, limit: int = 500) -> list[YieldRecord]:
        """The individual yield records in a region and time range that are not void, newest first."""

    def yields_unattributed(self, q: YieldsQuery) -> int:
        """How many of the records ``yields(q)`` sums were attributed to their device's village by
        fallback (``source`` = ``records.SOURCE_UNATTRIBUTED``: neither plot nor village named)."""

    def latest(self, region: InRegion, since: int) -> dict[str, DeviceLatest]:
        """Per device seen in the region since ``since``: last seen, latest value per metric, status."""

    def rejections(self, limit: int = 100, reason: str | None = None, device: str | None = None) -> list[Rejection]:
        """The most recent rejected inputs, newest first."""

    def counters(self) -> IngestCounters:
        """Ingest counters summed over workers."""

    def ping(self) -> dict[str, object]:
        """Cheap health probe: ``{"ok": bool, ...backend details}``; never raises."""

    def close(self) -> None:
        """Flush pending writes and release connections."""


class JobsStore(Store, Protocol):
    """A store the jobs runner can work on: rollups and alerts besides the read/write contract.

    Both backends implement it (tests/store/test_jobs_contract.py); it is a protocol of its own so
    a new backend can serve the web and ingest before it has rollups.
    """

    # -- rollups (issue 5): hourly and daily aggregates that ``readings`` answers from ------------------

    def refresh_rollups(self, max_windows: int = 500) -> RollupProgress:
        """Recompute the rollups of up to ``max_windows`` (metric, hour) windows touched by writes
        since they were last rolled up, oldest first, and the local days that hold them.

        ``write`` records the windows it touches, so a backlog arriving days late re-computes exactly
        the windows it lands in. Idempotent: calling it again with nothing dirty does nothing. Until a
        window is rolled up ``readings`` answers it from raw points, so results never depend on it.
        (InfluxDB: the downsampling into the rollup bucket.)"""

    # -- alerts (issue 5): active and history, written by the jobs runner -----------------------------

    def open_alert(self, alert: Alert) -> Alert | None:
        """Store ``alert`` as active unless an active alert with its key exists; the stored alert
        (with its id) or None when one was already active. ``alert.id`` is ignored."""

    def clear_alert(self, key: str, ts: int) -> Alert | None:
        """Mark the active alert of ``key`` cleared at ``ts``; the cleared alert, or None if none was."""

    def ack_alert(self, alert_id: int, by: str, ts: int) -> Alert:
        """Record that staff (``by``) acknowledged the alert; NotFound for an unknown id.
        Acknowledging again keeps the first acknowledgement."""

    def get_alert(self, alert_id: int) -> Alert | None:
        """One alert by its id, active or not; None when there is none."""

    def list_alerts(self, region: InRegion, active: bool | None = None, limit: int = 500) -> list[Alert]:
        """Alerts about villages of the region, newest raised first; ``active`` True: not cleared,
        False: cleared (history), None: both."""

    def undelivered_alerts(self, channel: AlertChannel, limit: int = 500) -> list[Alert]:
        """Alerts whose current version was not yet delivered on ``channel``, oldest change first."""

    def mark_delivered(self, alert_id: int, channel: AlertChannel, version: int) -> None:
        """Record that ``version`` of the alert went out on ``channel`` (never moves backwards)."""


class RecordsStore(Store, Protocol):
    """A store that keeps harvest records with ids, status and revisions (DESIGN.md "Harvest records").

    Nothing is ever deleted: a correction replaces the record's point (same id) and appends a
    revision; a void sets its status. tests/store/test_records_contract.py checks both backends."""

    def list_records(self, q: RecordsQuery) -> list[YieldRecord]:
        """Records matching ``q``, newest first by (ts, id), at most ``q.limit``."""

    def get_record(self, record_id: str) -> YieldRecord | None:
        """One record by id, void ones too; None when there is none."""

    def save_record(self, rec: YieldRecord, revision: Revision, replaces: YieldRecord | None = None) -> None:
        """Store ``rec`` (a new entry when ``replaces`` is None, else the next revision of that
        record, whose point it replaces) and append ``revision`` to its history, atomically where the
        backend allows. Conflict when the stored record is no longer at ``replaces.revision``."""

    def save_records(self, items: list[tuple[YieldRecord, Revision, YieldRecord | None]]) -> None:
        """``save_record`` for many (an import), in one transaction where the backend allows."""

    def record_history(self, record_id: str) -> list[Revision]:
        """Every stored revision of the record, oldest first (device records have none until changed)."""


def as_records_store(store: Store) -> RecordsStore | None:
    """The store as a RecordsStore when its backend keeps record revisions, else None."""
    return cast(RecordsStore, store) if hasattr(store, "save_record") else None


def as_jobs_store(store: Store) -> JobsStore | None:
    """The store as a JobsStore when its backend keeps rollups and alerts, else None."""
    return cast(JobsStore, store) if hasattr(store, "refresh_rollups") else None
