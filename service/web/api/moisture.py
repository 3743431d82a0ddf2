"""``/moisture``: 墒情 of a local day per township or village, graded on relative moisture.

Its parameter and answer models live here, beside the one view that uses them: the grade names
are the standard's Chinese words (what a 墒情简报 prints), each with an English twin for the
English pages and for scripts that would rather switch on ASCII.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any, Literal

from flask import Response
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema

from ... import moisture
from ...queries.moisture import MoistureGroup, MoistureReport, moisture_report
from ...times import local_date, now_ms
from ..auth import scoped
from ..figures import half_up_or_none
from ..state import state
from .openapi import Route
from .params import RegionFilter, parse
from .routing import AUTH, query_args, routes, scoped_answer
from .schemas import SCOPE_NOTE

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
FIRST_YEAR, LAST_YEAR = 2000, 2100


def _local_date(value: Any) -> date:
    if not isinstance(value, str) or not _DATE.match(value):
        raise ValueError("must be a local date YYYY-MM-DD (本地日期)")
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a calendar date") from None
    if not FIRST_YEAR <= day.year <= LAST_YEAR:
        raise ValueError(f"{value!r} lies outside {FIRST_YEAR}–{LAST_YEAR}")
    return day


LocalDate = Annotated[
    date,
    BeforeValidator(_local_date),
    WithJsonSchema({"type": "string", "format": "date", "examples": ["2026-07-15"]}),
]


class MoistureParams(RegionFilter):
    date: LocalDate | None = Field(None, description="local day YYYY-MM-DD in the configured zone; default: today")
    group_by: Literal["township", "village"] | None = Field(
        None, description="default: the region's children (a village: the village itself)")


Grade = Literal["过多", "适宜", "轻度不足", "不足", "严重不足"]
Drought = Literal["无旱", "轻旱", "中旱", "重旱", "特旱"]


class MoistureGroupOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    key: str = Field(description="region code")
    name: str
    relative_pct: float | None = Field(description="mean relative moisture (土壤相对含水量, % of field capacity) "
                                                   "over the graded stations, 1 decimal; null: none graded")
    grade: Grade | None = Field(description="墒情 grade of relative_pct (NY/T 1782 practice)")
    grade_en: str | None
    drought: Drought | None = Field(description="drought grade of relative_pct (GB/T 32136-2015)")
    drought_en: str | None
    stations: dict[str, int] = Field(description="graded stations per grade, e.g. {\"适宜\": 30, \"不足\": 8}")
    frozen: int = Field(description="stations not graded: that day's mean soil_temp ≤ 0 °C")
    anomalous: int = Field(description="stations not graded: relative moisture < 6 % or > 190 %")
    missing: int = Field(description="registered soil-moisture stations that sent nothing that day")


class MoistureAnswer(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    scope: str | None = Field(None, description=SCOPE_NOTE)
    region: str
    region_name: str
    date: str = Field(description="the local day, YYYY-MM-DD")
    group_by: Literal["township", "village"]
    groups: list[MoistureGroupOut]
    total: MoistureGroupOut


def group_out(g: MoistureGroup) -> MoistureGroupOut:
    return MoistureGroupOut(key=g.key, name=g.name, relative_pct=half_up_or_none(g.relative_pct, 1),
                            grade=g.grade,  # type: ignore[arg-type]  # one of moisture.GRADES
                            grade_en=moisture.GRADES_EN.get(g.grade or ""), drought=g.drought,  # type: ignore[arg-type]
                            drought_en=moisture.DROUGHT_EN.get(g.drought or ""), stations=g.stations,
                            frozen=g.frozen, anomalous=g.anomalous, missing=g.missing)


def moisture_answer(r: MoistureReport, name: str, group_by: Literal["township", "village"],
                    scope: str | None) -> MoistureAnswer:
    return MoistureAnswer(scope=scope, region=r.region, region_name=name, date=r.start.isoformat(),
                          group_by=group_by, groups=[group_out(g) for g in r.groups], total=group_out(r.total))


@routes.add(Route("/moisture", "GET", "墒情 of a local day: relative moisture, grade and drought grade per group",
                  MoistureAnswer, params=MoistureParams, errors=(400, *AUTH, 404),
                  description="A station's day is the mean of its soil_moisture that local day ÷ its soil's field "
                              "capacity (config/soils.toml). Frozen soil (that day's mean soil_temp ≤ 0 °C) and "
                              "anomalous values (< 6 % or > 190 %) are counted, not graded. A group's relative_pct "
                              "is the mean over its graded stations; grade and drought are graded from that mean; "
                              "a value on a threshold takes the drier grade (exactly 60 % is 轻度不足, 轻旱)."))
def moisture_get() -> Response:
    st = state()
    p = parse(MoistureParams, query_args())
    part = scoped(p.region)
    day = p.date or local_date(now_ms(), st.ctx.settings.tz)
    grouping: Literal["township", "village"] = p.group_by or (
        "township" if part.region.level == "district" else "village")
    report = moisture_report(st.ctx, st.store, part.region.code, day, 1, grouping,
                             part.within.code if part.narrowed else None)
    return scoped_answer(moisture_answer(report, part.region.name, grouping, part.narrowed))
