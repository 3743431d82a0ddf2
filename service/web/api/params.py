"""Query parameters and request bodies of the REST API as pydantic models.

One model per endpoint, strict (``extra="forbid"``) so a misspelt parameter answers 400 instead of
being silently ignored. The same models feed the OpenAPI document (``openapi.py``), so what is
validated is what is documented. Values that depend on config (metric and crop ids) are checked
against the catalogue passed in the validation context.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)

from ...catalogue import Catalogue
from ...errors import BadInput
from ...records import REASONS
from ...times import DAY_MS, TimeFormatError, parse_duration, parse_rfc3339, window_start

REGION_CODE = r"^\d{6}(\d{3}){0,2}$"
DEVICE_ID = r"^[A-Za-z0-9_-]{1,64}$"
LAND_ID = DEVICE_ID  # plot and area group ids
PATTERN_HINTS = {"region": "is not a region code of 6, 9 or 12 digits",
                 "device": "is not a device id ([A-Za-z0-9_-]{1,64})"}
MAX_WINDOWS = 10_000  # per series: a bigger answer is a mistake (every=1m over a year), not a chart


def _rfc3339(value: Any) -> int:
    if not isinstance(value, str):
        raise ValueError("must be an RFC 3339 time with an offset")
    try:
        return parse_rfc3339(value)
    except TimeFormatError as exc:
        hint = " (in a URL, write '+' as %2B)" if " " in value else ""
        raise ValueError(f"{exc}{hint}") from None


def _duration(value: Any) -> int:
    if not isinstance(value, str):
        raise ValueError("must be a duration like 10m, 1h or 1d")
    try:
        return parse_duration(value)
    except TimeFormatError as exc:
        raise ValueError(str(exc)) from None


# Query strings carry text: these types parse it, and document themselves as the text they take.
Rfc3339 = Annotated[
    int,
    BeforeValidator(_rfc3339),
    WithJsonSchema({"type": "string", "format": "date-time", "examples": ["2026-05-01T08:00:00+08:00"]}),
]
Duration = Annotated[
    int,
    BeforeValidator(_duration),
    WithJsonSchema({"type": "string", "pattern": r"^[1-9]\d{0,5}(s|m|h|d|w)$", "examples": ["10m", "1h", "1d"]}),
]
RegionCode = Annotated[str, Field(pattern=REGION_CODE, description="region code at any tier (6, 9 or 12 digits)")]


def _catalogue(info: ValidationInfo) -> Catalogue | None:
    ctx = info.context or {}
    cat = ctx.get("catalogue")
    return cat if isinstance(cat, Catalogue) else None


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NoParams(_Params):
    """Endpoints that take no query parameters still refuse unknown ones."""


class RegionFilter(_Params):
    region: RegionCode | None = Field(None, description="region code at any tier; default: the district")


class YieldsParams(RegionFilter):
    year: int | None = Field(None, ge=2000, le=2100, description="local calendar year; default: this year "
                             "(with group_by=year: every year)")
    crop: str | None = Field(None, description="crop id from the catalogue")
    group_by: Literal["township", "village", "crop", "year", "area_group"] | None = Field(
        None, description="default: the region's children (a village: crop); area_group: one group per area "
                          "group plus key \"\" (其他) for the records of none")
    area_group: str | None = Field(None, pattern=LAND_ID, description="only records of this area group's plots")
    status: Literal["approved"] | None = Field(None, description="approved: only reviewed and approved records; "
                                                                 "default: every record that is not void")
    unit: Literal["cn", "si"] = Field("cn", description="cn: 亩, 斤, 斤/亩; si: ha, kg, kg/ha")

    @field_validator("crop")
    @classmethod
    def _known_crop(cls, v: str | None, info: ValidationInfo) -> str | None:
        return _crop_known(v, info)


def _crop_known(v: str | None, info: ValidationInfo) -> str | None:
    cat = _catalogue(info)
    if v is not None and cat is not None and v not in cat.crops:
        raise ValueError(f"unknown crop {v!r} (known: {', '.join(sorted(cat.crops))})")
    return v


RECORD_ID = r"^[A-Za-z0-9_-]{1,64}$"
CURSOR = r"^[A-Za-z0-9_-]{1,200}$"


class RecordsParams(RegionFilter):
    year: int | None = Field(None, ge=2000, le=2100, description="local calendar year; default: every year")
    crop: str | None = Field(None, description="crop id from the catalogue")
    status: Literal["submitted", "approved", "returned", "void"] | None = Field(
        None, description="one status; default: every status, void included")
    source: Literal["device", "staff", "import"] | None = Field(None, description="where records came from")
    plot: str | None = Field(None, pattern=LAND_ID, description="only the records of this plot")
    limit: int = Field(100, ge=1, le=1000, description="records per page (default 100, at most 1000)")
    cursor: str | None = Field(None, pattern=CURSOR, description="the `next` of the previous page (opaque)")
    unit: Literal["cn", "si"] = Field("cn", description="cn: 亩, 斤, 斤/亩; si: ha, kg, kg/ha")

    @field_validator("crop")
    @classmethod
    def _known_crop(cls, v: str | None, info: ValidationInfo) -> str | None:
        return _crop_known(v, info)


class UnitParams(_Params):
    unit: Literal["cn", "si"] = Field("cn", description="cn: 亩, 斤, 斤/亩; si: ha, kg, kg/ha")


Reason = Annotated[str, Field(min_length=1, max_length=500, description="why (kept in the record's history)")]


class RecordPatch(BaseModel):
    """A correction: any of the entry's fields, validated by the same rules as an entry, and why."""

    model_config = ConfigDict(extra="forbid", strict=True)

    reason: Reason
    ts: str | int | None = Field(None, description="RFC 3339 with offset, or epoch milliseconds")
    crop: str | None = Field(None, description="crop id from the catalogue")
    area_mu: float | None = Field(None, gt=0, description="area in 亩 (or give area_ha)")
    area_ha: float | None = Field(None, gt=0, description="area in hectares (or give area_mu)")
    yield_jin: float | None = Field(None, ge=0, description="yield in 斤 (or give yield_kg)")
    yield_kg: float | None = Field(None, ge=0, description="yield in kg (or give yield_jin)")
    plot: str | None = Field(None, max_length=64, description="plot id; \"\" removes the plot")
    village: str | None = Field(None, pattern=r"^\d{12}$", description="12-digit village code")
    moisture_pct: float | None = Field(None, ge=0, le=100)


class VoidIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    reason: Reason


class ReviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    decision: Literal["approve", "return"]
    comment: str = Field("", max_length=500, description="the reviewer's note (kept in the history)")


class PlotsParams(RegionFilter):
    group: str | None = Field(None, pattern=LAND_ID, description="only the plots of this area group")
    unit: Literal["cn", "si"] = Field("cn", description="cn: area in 亩; si: in ha")


class AreaGroupsParams(RegionFilter):
    unit: Literal["cn", "si"] = Field("cn", description="cn: area in 亩; si: in ha")


class ReadingsParams(RegionFilter):
    metric: str = Field(description="metric id from the catalogue")
    start: Rfc3339 | None = Field(None, description="window start, RFC 3339; default: end − 24 h")
    end: Rfc3339 | None = Field(None, description="end (exclusive), RFC 3339; default: now")
    every: Duration = Field("1h", validate_default=True, description="window length: 10m, 1h, 1d, ...; default 1h")
    agg: Literal["mean", "min", "max", "sum", "count"] = "mean"
    group_by: Literal["township", "village", "device"] | None = Field(
        None, description="default: the region's children, or the region itself when it is a village")

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, v: str, info: ValidationInfo) -> str:
        cat = _catalogue(info)
        if cat is not None and v not in cat.metrics:
            raise ValueError(f"unknown metric {v!r} (known: {', '.join(sorted(cat.metrics))})")
        return v

    def window(self, now: int, tz: Any) -> tuple[int, int]:
        """[start, end) with the defaults filled in; refuses empty ranges and oversized answers."""
        end = self.end if self.end is not None else now
        start = self.start if self.start is not None else end - DAY_MS
        if start >= end:
            raise BadInput("start must be before end", "start")
        first = window_start(start, self.every, tz)
        windows = -(-(end - first) // self.every)
        if windows > MAX_WINDOWS:
            raise BadInput(f"{windows} windows of every={format_duration(self.every)} between start and end; "
                           f"at most {MAX_WINDOWS}: widen every or narrow the range", "every")
        return start, end


class DevicesParams(RegionFilter):
    pass


class AlertsParams(RegionFilter):
    active: Literal["true", "false"] | None = Field(None, description="only active (true) or ended (false) alerts")


class RejectionsParams(_Params):
    limit: int = Field(100, ge=1, le=1000, description="newest first, at most 1000")
    reason: str | None = Field(None, description="one rejection reason code")
    device: str | None = Field(None, pattern=DEVICE_ID)

    @field_validator("reason")
    @classmethod
    def _known_reason(cls, v: str | None) -> str | None:
        if v is not None and v not in REASONS:
            raise ValueError(f"unknown reason {v!r} (known: {', '.join(REASONS)})")
        return v


class YieldIn(BaseModel):
    """A harvest record entered by staff: its shape and types checked by this model (the one the
    OpenAPI document shows), then the MQTT contract's rules (``service.payloads``: catalogue crops,
    time window, one unit of each), so a record the API accepts is exactly one a grain scale could send."""

    model_config = ConfigDict(extra="forbid", strict=True)

    village: str = Field(pattern=r"^\d{12}$", description="12-digit village code")
    ts: str | int = Field(description="RFC 3339 with offset, or epoch milliseconds")
    crop: str = Field(description="crop id from the catalogue")
    area_mu: float | None = Field(None, gt=0, description="area in 亩 (or give area_ha)")
    area_ha: float | None = Field(None, gt=0, description="area in hectares (or give area_mu)")
    yield_jin: float | None = Field(None, ge=0, description="yield in 斤 (or give yield_kg)")
    yield_kg: float | None = Field(None, ge=0, description="yield in kg (or give yield_jin)")
    plot: str | None = Field(None, max_length=64)
    moisture_pct: float | None = Field(None, ge=0, le=100)


class AckIn(BaseModel):
    """Who acknowledges: the name given (a clerk at a shared office PC), else the logged-in account's."""

    model_config = ConfigDict(extra="forbid", strict=True)

    by: str = Field(default="staff", min_length=1, max_length=64,
                    description="who acknowledges (default: the logged-in account; staff without logins)")

    @field_validator("by")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("a name of 1 to 64 characters")
        return v.strip()


M = TypeVar("M", bound=_Params)
B = TypeVar("B", bound=BaseModel)


def format_duration(ms: int) -> str:
    """The shortest spelling of a window length: 3600000 → ``1h``."""
    for suffix, unit in (("w", 7 * DAY_MS), ("d", DAY_MS), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms % unit == 0:
            return f"{ms // unit}{suffix}"
    return f"{ms}ms"


def _bad_input(model: type[BaseModel], exc: ValidationError, kind: str) -> BadInput:
    """The first error, named by its field: 'unknown parameter' / 'unknown field' for extra ones."""
    err = exc.errors()[0]
    name = str(err["loc"][0]) if err["loc"] else ""
    if err["type"] == "extra_forbidden":
        allowed = ", ".join(model.model_fields) or "none"
        return BadInput(f"unknown {kind} {name!r} (allowed: {allowed})", name)
    msg = str(err["msg"]).removeprefix("Value error, ")
    if err["type"] == "string_pattern_mismatch":
        msg = f"{str(err['input'])[:70]!r} {PATTERN_HINTS.get(name, msg)}"
    return BadInput(f"{name}: {msg}" if name else msg, name or None)


def parse_body(model: type[B], raw: bytes, *, optional: bool = False) -> B:
    """A JSON request body → the validated model, or BadInput: never a 500, however hostile.
    ``optional``: an empty body is the model's defaults."""
    try:
        body = json.loads(raw) if raw.strip() or not optional else {}
    except (ValueError, UnicodeDecodeError):
        raise BadInput("the body must be a JSON object (UTF-8)") from None
    except RecursionError:  # thousands of nested brackets
        raise BadInput("the body is nested too deeply") from None
    if not isinstance(body, dict):
        raise BadInput("the body must be a JSON object")
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise _bad_input(model, exc, "field") from None


def parse(model: type[M], args: Mapping[str, list[str]], context: Mapping[str, Any] | None = None) -> M:
    """Query arguments → a validated model, or BadInput naming the first bad parameter."""
    repeated = [k for k, values in args.items() if len(values) > 1]
    if repeated:
        raise BadInput(f"{repeated[0]}: give the parameter once", repeated[0])
    data = {k: values[0] for k, values in args.items()}
    try:
        return model.model_validate(data, context=dict(context or {}))
    except ValidationError as exc:
        raise _bad_input(model, exc, "parameter") from None
