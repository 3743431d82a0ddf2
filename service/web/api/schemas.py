"""The JSON answers of the REST API as pydantic models.

Views build these and dump them, so the OpenAPI document (generated from the same models) cannot
drift from what is served. Rounding is part of the contract: areas, yields and per-area yields to
2 decimals, reading values to 3; times are RFC 3339 in the configured zone.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Out(BaseModel):
    model_config = ConfigDict(populate_by_name=True)  # dumped with by_alias=True (state.answer)


SCOPE_NOTE = ("present only when the answer was narrowed to the caller's scope (a region code): the region asked "
              "for lies above it, and only what lies inside the scope is listed and counted")


class _Scoped(_Out):
    scope: str | None = Field(None, description=SCOPE_NOTE)


class ErrorBody(_Out):
    code: str = Field(description="bad_request, not_found, method_not_allowed, payload_too_large, internal, ...")
    message: str
    field: str | None = Field(None, description="the parameter or body field at fault, when there is one")
    id: str | None = Field(None, description="the record the error is about (duplicate: the existing record)")


class ErrorAnswer(_Out):
    error: ErrorBody


class RegionTreeNode(_Out):
    code: str
    name: str
    level: Literal["district", "township", "village"]
    children: list[RegionTreeNode]


class RegionTree(RegionTreeNode):
    """The tree's root, which says when branches outside the caller's scope were left out."""

    scope: str | None = Field(None, description=SCOPE_NOTE)


class RegionRef(_Out):
    code: str
    name: str
    level: Literal["district", "township", "village"]


class DeviceCounts(_Out):
    total: int
    online: int


class LatestValue(_Out):
    value: float = Field(description="mean over the region's stations of each one's latest value (last 24 h)")
    unit: str
    devices: int = Field(description="stations that contributed")
    ts: str = Field(description="the newest of those values")


class RegionNode(_Scoped):
    code: str
    name: str
    level: Literal["district", "township", "village"]
    parent: RegionRef | None
    children: list[RegionRef]
    devices: DeviceCounts
    latest: dict[str, LatestValue]


class UnitLabels(_Out):
    area: str
    yield_: str = Field(alias="yield")
    yield_per_area: str


class YieldTotal(_Out):
    records: int
    area: float
    yield_: float = Field(alias="yield")
    yield_per_area: float | None = Field(description="Σyield / Σarea (area-weighted); null without area")
    unattributed_records: int = Field(0, description="records counted in their device's village only because "
                                                     "they named neither plot nor village")


class YieldGroup(_Out):
    key: str = Field(description="region code, crop id, year or area group id (\"\": 其他)")
    name: str
    records: int
    area: float
    yield_: float = Field(alias="yield")
    yield_per_area: float | None = Field(description="Σyield / Σarea (area-weighted); null without area")


class YieldsAnswer(_Scoped):
    region: str
    region_name: str
    year: int | None = Field(description="null when group_by=year spans every year")
    unit: Literal["cn", "si"]
    units: UnitLabels
    group_by: Literal["township", "village", "crop", "year", "area_group"]
    crop: str | None
    groups: list[YieldGroup]
    total: YieldTotal


class PlotOut(_Out):
    id: str
    village: str
    name: str
    area: float = Field(description="亩 (unit=cn) or ha (unit=si)")
    groups: list[str] = Field(description="ids of the area groups it belongs to")


class PlotsAnswer(_Scoped):
    region: str
    unit: Literal["cn", "si"]
    plots: list[PlotOut]


class AreaGroupOut(_Out):
    id: str
    name: str
    kind: Literal["demo_zone", "high_standard", "conservation_tillage", "custodial", "other"]
    plots: int = Field(description="its plots inside the region")
    area: float = Field(description="their area, 亩 (unit=cn) or ha (unit=si)")


class AreaGroupsAnswer(_Scoped):
    region: str
    unit: Literal["cn", "si"]
    groups: list[AreaGroupOut]


class YieldStored(_Out):
    """The record as stored, in the unit keys the request used."""

    village: str
    township: str
    ts: str
    crop: str
    area_mu: float | None = None
    area_ha: float | None = None
    yield_jin: float | None = None
    yield_kg: float | None = None
    plot: str
    moisture_pct: float | None
    source: Literal["api"]
    id: str = Field(description="the new record's id (GET /yields/records/{id})")
    status: Literal["submitted", "approved", "returned", "void"]


Status = Literal["submitted", "approved", "returned", "void"]


class RecordOut(_Out):
    """One harvest record; area, yield and yield_per_area in the answer's unit."""

    id: str
    village: str
    plot: str
    ts: str
    crop: str
    area: float
    yield_: float = Field(alias="yield")
    yield_per_area: float | None
    moisture_pct: float | None
    source: Literal["device", "staff", "import"]
    device: str
    status: Status
    entered_by: str = Field(description="the account that entered it; \"\" for devices")
    revision: int
    updated: str = Field(description="time of the last change")
    unattributed: bool = Field(description="counted in its device's village only because it named neither plot "
                                           "nor village")


class RecordsAnswer(_Scoped):
    unit: Literal["cn", "si"]
    records: list[RecordOut]
    next: str | None = Field(description="cursor of the next page, or null on the last one")


class RevisionOut(_Out):
    revision: int
    at: str
    by: str
    reason: str
    changes: dict[str, tuple[Any, Any]] = Field(description="field → [old, new] in stored units (area_ha, yield_kg; "
                                                            "ts as RFC 3339)")
    status: Status


class HistoryAnswer(_Out):
    id: str
    revisions: list[RevisionOut]


class SeriesOut(_Out):
    key: str
    name: str
    points: list[tuple[str, float]] = Field(description="[window start (RFC 3339, local zone), value]")


class ReadingsAnswer(_Scoped):
    region: str
    metric: str
    unit: str
    every: str
    agg: Literal["mean", "min", "max", "sum", "count"]
    group_by: Literal["township", "village", "device"]
    start: str
    end: str
    series: list[SeriesOut]


class DeviceOut(_Out):
    id: str
    kind: Literal["station", "yield_monitor", "grain_scale"]
    village: str
    township: str
    metrics: list[str]
    last_seen: str | None
    online: bool


class DevicesAnswer(_Scoped):
    devices: list[DeviceOut]


class AlertOut(_Out):
    id: str
    kind: str = Field(description="device_offline, battery_low, ...")
    severity: Literal["info", "warning", "critical"]
    region: str = Field(description="village code of the device, or the region the alert is about")
    device: str | None
    message: str
    since: str | None
    active: bool
    key: str | None = Field(default=None, description="what the alert is about, rule:subject")
    value: float | None = None
    threshold: float | None = None
    cleared_at: str | None = None
    acked_at: str | None = None
    acked_by: str | None = None


class AlertsAnswer(_Scoped):
    alerts: list[AlertOut]


class BrokerState(_Out):
    model_config = ConfigDict(extra="allow")  # a probe may add its own details

    reachable: bool
    host: str | None = None
    port: int | None = None
    error: str | None = None


class IngestState(_Out):
    received: int
    accepted: int
    rejected: dict[str, int]
    workers: dict[str, str] = Field(description="ingest worker id → time of its last commit")
    lag_s: float | None = Field(description="seconds since the newest commit of any ingest worker")
    live: dict[str, Any] | None = Field(default=None, description=(
        "the in-process ingest of `nongyun serve`: state (running, store_unavailable, ...), "
        "queue depth, messages not yet committed, lag of the oldest one, the last store fault"))


class ChannelState(_Out):
    queued: int = Field(description="messages waiting for their next attempt")
    sent: int
    dead_letters: int = Field(description="messages given up after the last retry (or refused for good)")
    retries: int
    last_error: str | None
    last_error_at: str | None


class NotificationState(_Out):
    dead_letters: int = Field(description="group-robot messages (企业微信, 钉钉, webhooks) given up, all channels")
    queued: int
    channels: dict[str, ChannelState] = Field(description="per channel name of config/alerts.toml [[channels]]")


class HealthAnswer(_Out):
    status: Literal["ok", "degraded"]
    store: dict[str, Any]
    broker: BrokerState
    ingest: IngestState
    notifications: NotificationState


class RejectionOut(_Out):
    ts: str = Field(description="when it was received")
    topic: str
    device: str
    reason: str
    detail: str
    payload: str = Field(description="the first bytes of the payload")


class RejectionsAnswer(_Scoped):
    rejections: list[RejectionOut]


class OpenApiAnswer(_Out):
    model_config = ConfigDict(extra="allow")

    openapi: str
