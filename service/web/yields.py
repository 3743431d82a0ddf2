"""Yield totals by region, crop or year, and harvest records entered by staff.

Per-area yields are always Σyield / Σarea of the group (area-weighted): a 1-亩 test plot must not
weigh as much as a 500-亩 field. Records entered through the API pass the very rules the MQTT
contract applies to grain scales (``service.payloads``), so both paths store the same things.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Literal

from ..context import Context
from ..errors import BadInput, Forbidden
from ..payloads import PayloadDecoder, Rejected
from ..records import Batch, YieldRecord
from ..regions import LEVEL_DIGITS, Region
from ..store import Store
from ..store.base import YieldsQuery, YieldTotals
from ..times import format_local, local_year, year_bounds
from ..units import UNIT_LABELS, UnitSystem, area_out, ha_to_mu, kg_to_jin, per_area, yield_out
from .health import API_WORKER
from .params import YieldIn, YieldsParams
from .schemas import UnitLabels, YieldGroup, YieldsAnswer, YieldStored, YieldTotal

YieldsGroup = Literal["township", "village", "crop", "year"]
DEFAULT_GROUP: dict[str, YieldsGroup] = {"district": "township", "township": "village", "village": "crop"}
FIRST_YEAR, LAST_YEAR = 2000, 2100
BODY_FIELDS = tuple(YieldIn.model_fields)


def _total(t: YieldTotals | None, unit: UnitSystem) -> dict[str, Any]:
    records, area_ha, yield_kg = (t.records, t.area_ha, t.yield_kg) if t else (0, 0.0, 0.0)
    ratio = per_area(yield_kg, area_ha, unit)
    return {"records": records, "area": round(area_out(area_ha, unit), 2),
            "yield": round(yield_out(yield_kg, unit), 2),
            "yield_per_area": round(ratio, 2) if ratio is not None else None}


def _tier_regions(ctx: Context, region: Region, level: str) -> list[Region]:
    """Every region of a tier that lies under (or above) ``region``: groups with no harvest show as zeros."""
    return sorted((n for n in ctx.tree if n.level == level and (n.contains(region.code) or region.contains(n.code))),
                  key=lambda n: n.code)


def totals(ctx: Context, store: Store, p: YieldsParams, now: int, within: Region | None = None) -> YieldsAnswer:
    """``within``: the caller's scope when the region asked for lies above it; only its villages count."""
    tz = ctx.settings.tz
    region = ctx.tree.get(p.region or ctx.tree.district.code)
    part = within or region
    group_by: YieldsGroup = p.group_by or DEFAULT_GROUP[region.level]
    year: int | None = p.year
    if year is None and group_by != "year":
        year = local_year(now, tz)
    start, end = (year_bounds(year, tz) if year is not None
                  else (year_bounds(FIRST_YEAR, tz)[0], year_bounds(LAST_YEAR, tz)[1]))
    found = store.yields(YieldsQuery(part.village_range(), start, end, group_by, tz, p.crop))
    by_key = {t.key: t for t in found}
    groups: list[YieldGroup] = []
    if group_by in LEVEL_DIGITS:
        for node in _tier_regions(ctx, part, group_by):
            groups.append(YieldGroup.model_validate({"key": node.code, "name": node.name,
                                                     **_total(by_key.pop(node.code, None), p.unit)}))
    for key, t in sorted(by_key.items()):  # crops and years; regions no longer in the tree
        name = key
        if group_by == "crop" and key in ctx.catalogue.crops:
            name = ctx.catalogue.crops[key].name_zh
        groups.append(YieldGroup.model_validate({"key": key, "name": name, **_total(t, p.unit)}))
    whole = YieldTotals("", sum(t.records for t in found), sum(t.area_ha for t in found),
                        sum(t.yield_kg for t in found))
    return YieldsAnswer(scope=within.code if within is not None else None, region=region.code,
                        region_name=region.name, year=year, unit=p.unit,
                        units=UnitLabels.model_validate(UNIT_LABELS[p.unit]), group_by=group_by, crop=p.crop,
                        groups=groups, total=YieldTotal.model_validate(_total(whole, p.unit)))


def record_from_body(ctx: Context, decoder: PayloadDecoder, body: Any, now: int) -> YieldRecord:
    """A staff record → the stored record, by the MQTT contract's rules; BadInput names the field."""
    if not isinstance(body, dict):
        raise BadInput("the body must be a JSON object")
    unknown = [k for k in body if k not in BODY_FIELDS]
    if unknown:
        raise BadInput(f"unknown field {unknown[0]!r} (allowed: {', '.join(BODY_FIELDS)})", unknown[0])
    village = body.get("village")
    if not isinstance(village, str):
        raise BadInput("village: a 12-digit village code is required", "village")
    node = ctx.tree.find(village)
    if node is None or node.level != "village":
        raise BadInput(f"village: {village[:20]!r} is not a village in the region tree", "village")
    record = {k: v for k, v in body.items() if k != "village"}
    try:
        stored = decoder.yield_record(record, "", village, now)
    except Rejected as r:
        prefix = f"{r.field}: " if r.field and not r.detail.startswith(r.field) else ""
        raise BadInput(prefix + r.detail, r.field) from None
    return replace(stored, source="api")


def enter(ctx: Context, store: Store, decoder: PayloadDecoder, body: Any, now: int,
          scope: str | None = None) -> YieldStored:
    """Store a staff record; Forbidden when its village lies outside ``scope``."""
    rec = record_from_body(ctx, decoder, body, now)
    if scope is not None and not rec.village.startswith(scope):
        raise Forbidden(f"village {rec.village} lies outside your scope {scope}")
    store.write(Batch(yields=[rec], worker=API_WORKER))
    keys = body if isinstance(body, dict) else {}
    out: dict[str, Any] = {"village": rec.village, "township": rec.village[:9],
                           "ts": format_local(rec.ts, ctx.settings.tz), "crop": rec.crop, "plot": rec.plot,
                           "moisture_pct": rec.moisture_pct, "source": "api"}
    if "area_mu" in keys:
        out["area_mu"] = round(ha_to_mu(rec.area_ha), 2)
    else:
        out["area_ha"] = round(rec.area_ha, 2)
    if "yield_jin" in keys:
        out["yield_jin"] = round(kg_to_jin(rec.yield_kg), 2)
    else:
        out["yield_kg"] = round(rec.yield_kg, 2)
    return YieldStored.model_validate(out)
