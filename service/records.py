"""What flows from ingest into a store: accepted records, rejections, and the batch that carries them.

Records are SI and UTC (kg, ha, epoch ms) with their location tags resolved at ingest time. A
point's identity is (measurement, tags, time), as in InfluxDB: writing the same identity again
replaces the stored point, so a redelivered message never counts twice.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Reading:
    """One telemetry record: measurement ``telemetry``, tags (district, township, village, device)."""

    device: str
    village: str
    ts: int  # UTC epoch ms
    values: dict[str, float]


# Where a yield record came from, stored in its ``source`` (both backends keep it as it is): a
# device record attributed by plot or named village, one attributed to the device's own village by
# fallback (DESIGN.md "Land": counted as ``unattributed``), or one entered by staff.
SOURCE_DEVICE = "mqtt"
SOURCE_UNATTRIBUTED = "mqtt_unattributed"
SOURCE_STAFF = "api"
SOURCE_IMPORT = "import"
# The API's three sources (DESIGN.md "Harvest records") for the stored values above.
API_SOURCE: dict[str, str] = {SOURCE_DEVICE: "device", SOURCE_UNATTRIBUTED: "device", SOURCE_STAFF: "staff",
                              SOURCE_IMPORT: "import"}
# Statuses of a record: submitted → approved or returned (by a reviewer); void (withdrawn) is final.
STATUSES = ("submitted", "approved", "returned", "void")


def device_record_id(village: str, device: str, crop: str, plot: str, ts: int) -> str:
    """The id of a device record, derived from its point identity so a redelivered message maps to
    the same id (and the same point). ``d`` + 19 hex digits: URL-safe ASCII, apart from staff ids."""
    digest = hashlib.sha256(f"{village}|{device}|{crop}|{plot}|{ts}".encode()).hexdigest()
    return "d" + digest[:19]


def new_record_id() -> str:
    """A fresh id for a staff or import entry: two entries never share one, whatever they hold."""
    return "s" + secrets.token_hex(10)[:19]


@dataclass(frozen=True, slots=True)
class YieldRecord:
    """One harvest record: measurement ``yield``, tags (district, township, village, device, crop, plot).

    ``device`` is empty for records entered by staff through the API. ``id`` is stable for the
    record's life (corrections keep it); empty means "derive it the device way" (``record_id``),
    which is what MQTT records do, so the decoder need not know about ids.
    """

    device: str
    village: str
    ts: int
    crop: str
    area_ha: float
    yield_kg: float
    plot: str = ""
    moisture_pct: float | None = None
    source: str = "mqtt"  # SOURCE_DEVICE | SOURCE_UNATTRIBUTED | SOURCE_STAFF | SOURCE_IMPORT
    id: str = ""
    status: str = "submitted"  # one of STATUSES
    entered_by: str = ""  # account name; "" for devices
    revision: int = 1
    updated: int = 0  # UTC ms of the last change; 0: at write time

    @property
    def record_id(self) -> str:
        return self.id or device_record_id(self.village, self.device, self.crop, self.plot, self.ts)

    @property
    def unattributed(self) -> bool:
        """Counted in the device's village only because it named neither plot nor village."""
        return self.source == SOURCE_UNATTRIBUTED


@dataclass(frozen=True, slots=True)
class Revision:
    """One change of a yield record, kept for ever: who, when, why, old → new per field.

    ``changes`` holds stored fields (SI: ``area_ha``, ``yield_kg``; ``ts`` in UTC ms) as
    ``[old, new]``; an entry lists every field as ``[None, value]``."""

    record: str  # the record's id
    revision: int
    at: int  # UTC ms
    by: str
    reason: str
    changes: dict[str, list[object]]
    status: str


@dataclass(frozen=True, slots=True)
class StatusChange:
    """A device's retained ``online``/``offline`` status (the last will says offline)."""

    device: str
    ts: int
    online: bool
    village: str = ""  # location tag resolved at ingest time, like every point


@dataclass(frozen=True, slots=True)
class Rejection:
    """Input that was not stored, with the reason code operators filter by and a readable detail."""

    ts: int  # when it was received, UTC epoch ms
    topic: str
    device: str
    reason: str
    detail: str
    payload: str  # the first bytes of the payload, for the operator to see what came


# Rejection reasons: stable codes (API, metrics, docs); the detail says which field and value.
REASONS: dict[str, str] = {
    "bad_topic": "topic is not nongyun/v1/{device}/telemetry|yield|status",
    "payload_too_large": "payload over 64 KiB",
    "bad_json": "payload is not JSON (or not UTF-8)",
    "bad_record": "record is not of the contract's shape (missing or wrong keys)",
    "bad_timestamp": "ts is not RFC 3339 with an offset nor integer epoch milliseconds",
    "unknown_device": "device id is not in the registry",
    "device_mismatch": "device id in the payload disagrees with the topic",
    "wrong_kind": "this kind of device does not publish on this topic",
    "unknown_metric": "metric is not in the catalogue",
    "unknown_crop": "crop is not in the catalogue",
    "not_finite": "value is not a finite number",
    "out_of_range": "value is outside the metric's valid range",
    "time_in_future": "ts more than 5 minutes ahead of the receiving clock",
    "time_too_old": "ts over a year behind the receiving clock",
    "unknown_plot": "plot is not registered (config/plots.yaml)",
    "plot_mismatch": "the village a record names disagrees with its plot's village",
    "implausible_yield": "单产 (yield ÷ area) outside the crop's record_jin_per_mu in config/catalogue.toml",
    "store_rejected": "the store refused the record's content",
}


@dataclass(slots=True)
class Batch:
    """Everything one commit writes. A backend writes it atomically where it can."""

    readings: list[Reading] = field(default_factory=list)
    yields: list[YieldRecord] = field(default_factory=list)
    statuses: list[StatusChange] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    messages: int = 0  # MQTT messages this batch came from: feeds the "received" counter
    worker: str = ""  # the ingest worker that wrote it: counters are kept per worker

    def __len__(self) -> int:
        return len(self.readings) + len(self.yields) + len(self.statuses) + len(self.rejections)

    def extend(self, other: Batch) -> None:
        self.readings.extend(other.readings)
        self.yields.extend(other.yields)
        self.statuses.extend(other.statuses)
        self.rejections.extend(other.rejections)
        self.messages += other.messages
