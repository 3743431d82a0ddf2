"""Domain answers of ``service.queries`` → the API's answer models: units, rounding, local times.

Rounding is part of the contract (areas, yields and per-area yields to 2 decimals, reading values
to 3; README "REST API"), and it happens here, once, after every sum was taken unrounded.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from ...jobs.views import alert_json
from ...queries.devices import DeviceState, LatestSummary
from ...queries.land import AreaGroupsReport, PlotsReport
from ...queries.readings import ReadingsReport
from ...queries.records import RecordsPage
from ...queries.yields import YieldsReport
from ...records import API_SOURCE, Revision, YieldRecord
from ...store.base import Alert
from ...times import format_local
from ...units import UNIT_LABELS, UnitSystem, area_out, per_area, yield_out
from ..figures import half_up, half_up_or_none, totals_json
from .params import format_duration
from .schemas import (
    AlertOut,
    AreaGroupOut,
    AreaGroupsAnswer,
    DeviceOut,
    LatestValue,
    PlotOut,
    PlotsAnswer,
    ReadingsAnswer,
    RecordOut,
    RecordsAnswer,
    RevisionOut,
    SeriesOut,
    UnitLabels,
    YieldGroup,
    YieldsAnswer,
    YieldTotal,
)

VALUE_DECIMALS = 3


def yields_answer(r: YieldsReport, unit: UnitSystem) -> YieldsAnswer:
    return YieldsAnswer(
        scope=r.within.code if r.within is not None else None, region=r.region.code, region_name=r.region.name,
        year=r.year, unit=unit, units=UnitLabels.model_validate(UNIT_LABELS[unit]), group_by=r.group_by,
        crop=r.crop,
        groups=[YieldGroup.model_validate({"key": g.key, "name": g.name, **totals_json(g.totals, unit)})
                for g in r.groups],
        total=YieldTotal.model_validate({**totals_json(r.total, unit), "unattributed_records": r.unattributed}))


def plots_answer(r: PlotsReport, unit: UnitSystem) -> PlotsAnswer:
    return PlotsAnswer(
        scope=r.within.code if r.within is not None else None, region=r.region.code, unit=unit,
        plots=[PlotOut(id=p.id, village=p.village, name=p.name, area=half_up(area_out(p.area_ha, unit)),
                       groups=list(p.groups)) for p in r.plots])


def area_groups_answer(r: AreaGroupsReport, unit: UnitSystem) -> AreaGroupsAnswer:
    return AreaGroupsAnswer(
        scope=r.within.code if r.within is not None else None, region=r.region.code, unit=unit,
        groups=[AreaGroupOut(id=s.group.id, name=s.group.name, kind=s.group.kind, plots=s.plots,
                             area=half_up(area_out(s.area_ha, unit))) for s in r.groups])


def readings_answer(r: ReadingsReport, tz: ZoneInfo) -> ReadingsAnswer:
    return ReadingsAnswer(
        scope=r.within.code if r.within is not None else None, region=r.region.code, metric=r.metric, unit=r.unit,
        every=format_duration(r.every), agg=r.agg, group_by=r.group_by, start=format_local(r.start, tz),
        end=format_local(r.end, tz),
        series=[SeriesOut(key=s.key, name=s.name,
                          points=[(format_local(t, tz), half_up(v, VALUE_DECIMALS)) for t, v in s.points])
                for s in r.series])


def device_out(s: DeviceState, tz: ZoneInfo) -> DeviceOut:
    seen = s.last_seen
    return DeviceOut(id=s.device.id, kind=s.device.kind, village=s.device.village, township=s.device.township,
                     metrics=list(s.device.metrics), last_seen=format_local(seen, tz) if seen is not None else None,
                     online=s.online)


def latest_out(summary: dict[str, LatestSummary], tz: ZoneInfo) -> dict[str, LatestValue]:
    return {metric: LatestValue(value=half_up(s.value, VALUE_DECIMALS), unit=s.unit, devices=s.devices,
                                ts=format_local(s.ts, tz)) for metric, s in summary.items()}


def alert_out(a: Alert, tz: ZoneInfo) -> AlertOut:
    return AlertOut.model_validate(alert_json(a, tz))


def record_out(r: YieldRecord, unit: UnitSystem, tz: ZoneInfo) -> RecordOut:
    return RecordOut.model_validate({
        "id": r.record_id, "village": r.village, "plot": r.plot, "ts": format_local(r.ts, tz), "crop": r.crop,
        "area": half_up(area_out(r.area_ha, unit)), "yield": half_up(yield_out(r.yield_kg, unit)),
        "yield_per_area": half_up_or_none(per_area(r.yield_kg, r.area_ha, unit)), "moisture_pct": r.moisture_pct,
        "source": API_SOURCE.get(r.source, "device"), "device": r.device, "status": r.status,
        "entered_by": r.entered_by, "revision": r.revision, "updated": format_local(r.updated or r.ts, tz),
        "unattributed": r.unattributed})


def records_answer(page: RecordsPage, unit: UnitSystem, tz: ZoneInfo) -> RecordsAnswer:
    return RecordsAnswer(scope=page.within.code if page.within is not None else None, unit=unit,
                         records=[record_out(r, unit, tz) for r in page.records], next=page.next)


def revision_out(rev: Revision, tz: ZoneInfo) -> RevisionOut:
    changes = {f: tuple(format_local(v, tz) if f == "ts" and isinstance(v, int) else v for v in pair)
               for f, pair in rev.changes.items()}
    return RevisionOut.model_validate({"revision": rev.revision, "at": format_local(rev.at, tz), "by": rev.by,
                                       "reason": rev.reason, "changes": changes, "status": rev.status})
