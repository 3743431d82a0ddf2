"""``/agromet``: 活动积温, frost dates and rain per group, this season against the same date last year.

Its parameter and answer models live here, beside the one view that uses them; the rules behind
each figure are ``service.agromet``'s, the grouping ``service.queries.agromet``'s.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from flask import Response
from pydantic import BaseModel, ConfigDict, Field

from ...agromet import Indicators
from ...queries.agromet import AgrometReport, GroupAgromet, agromet
from ...times import now_ms
from ..auth import scoped
from ..figures import half_up_or_none
from ..state import state
from .openapi import Route
from .params import RegionFilter, parse
from .routing import AUTH, query_args, routes, scoped_answer
from .schemas import SCOPE_NOTE

DATE_NOTE = "local date YYYY-MM-DD, or null when there was none"


class AgrometParams(RegionFilter):
    year: int | None = Field(None, ge=2000, le=2100, description="local calendar year; default: this year "
                             "(up to today; a past year up to 31 December; a future one is refused)")
    group_by: Literal["township", "village"] | None = Field(
        None, description="default: the region's children, or the region itself when it is a village")


class AgrometValues(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    gdd10: float | None = Field(description="≥ 10 °C active accumulated temperature (活动积温), °C·d, to 0.1: Σ of "
                                            "the daily means ≥ 10 °C; null when no air_temp was measured")
    first_frost: str | None = Field(description="first autumn frost (初霜): the first day on or after 1 July whose "
                                                "minimum air_temp ≤ 0 °C; " + DATE_NOTE)
    last_frost: str | None = Field(description="last spring frost (终霜): the last such day before 1 July (until "
                                               "1 July: the latest so far); " + DATE_NOTE)
    rain_mm: float | None = Field(description="rainfall since 1 January, mm, to 0.1; null without a rain gauge")
    days_since_rain5: int | None = Field(description="days from the latest day with ≥ 5 mm rain to as_of; null "
                                                     "when there was none this season")


class AgrometTotal(AgrometValues):
    stations: int = Field(description="stations with an air_temp or rainfall day this season")
    last_year: AgrometValues = Field(description="the same indicators up to the same date last year (同期)")


class _Named(BaseModel):
    key: str = Field(description="region code")
    name: str


class AgrometGroupOut(AgrometTotal, _Named):  # fields in reverse MRO order: key and name first
    pass


class AgrometAnswer(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    scope: str | None = Field(None, description=SCOPE_NOTE)
    region: str
    region_name: str
    year: int
    as_of: str = Field(description="the season's last day (local date): today, or 31 December of a past year")
    last_year_as_of: str = Field(description="the same calendar date one year earlier (29 February → 28 February)")
    group_by: Literal["township", "village"]
    groups: list[AgrometGroupOut]
    total: AgrometTotal


def _day(d: date | None) -> str | None:
    return d.isoformat() if d is not None else None


def _values(i: Indicators) -> dict[str, object]:
    return {"gdd10": half_up_or_none(i.gdd10, 1), "first_frost": _day(i.first_frost),
            "last_frost": _day(i.last_frost), "rain_mm": half_up_or_none(i.rain_mm, 1),
            "days_since_rain5": i.days_since_rain5}


def _total(g: GroupAgromet) -> dict[str, object]:
    return {**_values(g.this), "stations": g.stations, "last_year": _values(g.last)}


def agromet_answer(r: AgrometReport) -> AgrometAnswer:
    return AgrometAnswer.model_validate({
        "scope": r.within.code if r.within is not None else None, "region": r.region.code,
        "region_name": r.region.name, "year": r.year, "as_of": r.as_of.isoformat(),
        "last_year_as_of": r.last_as_of.isoformat(), "group_by": r.group_by,
        "groups": [{"key": g.key, "name": g.name, **_total(g)} for g in r.groups], "total": _total(r.total)})


@routes.add(Route("/agromet", "GET", "活动积温, frost dates and rain per group, against the same date last year",
                  AgrometAnswer, params=AgrometParams, errors=(400, *AUTH, 404),
                  description="A group's day is the mean over its stations of each daily value (daily mean and "
                              "minimum air_temp, daily rainfall) in local days; the indicators are taken on "
                              "that series, daily values kept to 0.1. Season: 1 January to as_of; frosts split "
                              "at 1 July (Liaoning: spring frosts before it, autumn frosts on or after it)."))
def agromet_get() -> Response:
    st = state()
    p = parse(AgrometParams, query_args())
    part = scoped(p.region)
    report = agromet(st.ctx, st.store, region=p.region, year=p.year, group_by=p.group_by, now=now_ms(),
                     within=part.within if part.narrowed else None)
    return scoped_answer(agromet_answer(report))
