"""The staff dashboards: district, township, village and device pages, and the yields export.

Pages are thin shells: the server renders names, targets and wording, and the browser fills in
every number from the same ``/api/v1`` answers other clients get, so a township head and a
district analyst querying the API never see two different totals.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, abort, jsonify, redirect, render_template, request, send_file
from werkzeug.wrappers import Response as BaseResponse

from ...auth import narrow, relation
from ...errors import BadInput, Forbidden, NotFound
from ...queries.records import records_page
from ...records import YieldRecord
from ...regions import Region
from ...registry import Device
from ...times import DAY_MS, format_local, now_ms
from ...units import area_out, per_area, yield_out
from ..assets import echarts_path
from ..auth import principal
from ..figures import half_up, half_up_or_none
from ..i18n import Lang, pick_lang, strings
from ..state import state
from . import export
from .land import village_plots

WEB = Path(__file__).resolve().parent.parent  # templates/ and static/ are the web app's, beside auth's
bp = Blueprint("pages", __name__, template_folder=str(WEB / "templates"), static_folder=str(WEB / "static"),
               static_url_path="/assets")

LANG_COOKIE = "nongyun_lang"
RANGES: dict[str, tuple[int, str]] = {  # picker label → (span ms, window) : ≤ 168 points per series
    "24h": (DAY_MS, "10m"),
    "7d": (7 * DAY_MS, "1h"),
    "30d": (30 * DAY_MS, "6h"),
    "90d": (90 * DAY_MS, "1d"),
}


def _lang() -> Lang:
    return pick_lang(request.args.get("lang"), request.cookies.get(LANG_COOKIE))


def _name(region: Region, lang: Lang) -> str:
    return region.name_en if lang == "en" and region.name_en else region.name_zh


def _crumbs(region: Region, lang: Lang) -> list[dict[str, str]]:
    chain: list[Region] = []
    node: Region | None = region
    while node is not None:
        chain.append(node)
        node = node.parent
    return [{"name": _name(r, lang), "href": f"/r/{r.code}"} for r in reversed(chain)]


def _target_json(code: str) -> dict[str, float | None] | None:
    found = state().ctx.targets.get(code)
    return found.as_json() if found else None


def _farming(region: Region) -> list[str]:
    """The villages under ``region`` that hold farmland: those with a registered plot; a district
    that registers no plots counts the villages with an output target > 0 (config/targets.toml
    gives urban communities none). Coverage ("12/15 村上报") is counted over these only, because a
    community has no harvest to report."""
    ctx = state().ctx
    villages = list(region.villages())
    if len(ctx.land):
        return [v.code for v in villages if ctx.land.in_village(v.code)]
    return [v.code for v in villages if (t := ctx.targets.get(v.code)) is not None and t.grain_output_jin > 0]


def _metrics(ids: set[str], lang: Lang) -> list[dict[str, str]]:
    cat = state().ctx.catalogue.metrics
    return [{"id": m.id, "name": m.name_en if lang == "en" else m.name_zh, "unit": m.unit}
            for m in cat.values() if m.id in ids]


def _record_links(region: Region, lang: Lang) -> dict[str, str] | None:
    """Editors see the import; township-or-above editors also the review queue (a village never approves)."""
    who = principal()
    if region.level not in ("district", "township") or not who.may("editor"):
        return None
    zh = lang != "en"
    return {"review": ("待审核记录" if zh else "Records to review") if len(who.scope) <= 9 else "",
            "import": "导入产量台账" if zh else "Import ledgers"}


def _render(template: str, tier: str, title: str, region: Region, lang: Lang, **extra: Any) -> Response:
    ctx = state().ctx
    t = strings(lang)
    tz = ctx.settings.tz
    year = datetime.fromtimestamp(now_ms() / 1000, tz).year
    subtree = [region, *region.children] + [g for c in region.children for g in c.children]
    page: dict[str, Any] = {
        "tier": tier,
        "lang": lang,
        "tz": ctx.settings.values.time_tz,
        "year": year,
        "strings": t,
        "region": {"code": region.code, "level": region.level, "name": _name(region, lang)},
        "children": [c.code for c in region.children],
        "names": {r.code: _name(r, lang) for r in subtree},
        "farming": (farming := _farming(region)),
        "villages": {c.code: sum(1 for v in farming if v.startswith(c.code)) for c in [region, *region.children]},
        "targets": {r.code: _target_json(r.code) for r in [region, *region.children]},
        "area_group_kinds": {g.id: g.kind for g in ctx.land.groups()},
        "metrics": {m.id: {"name": m.name_en if lang == "en" else m.name_zh, "unit": m.unit,
                           "decimals": m.decimals} for m in ctx.catalogue.metrics.values()},
        "crops": {c.id: c.name_en if lang == "en" else c.name_zh for c in ctx.catalogue.crops.values()},
        "ranges": {k: {"ms": ms, "every": every} for k, (ms, every) in RANGES.items()},
        **extra.pop("page", {}),
    }
    html = render_template(
        template, t=t, lang=lang, tier=tier, title=title, page=page, region=region, year=year,
        record_links=_record_links(region, lang),
        crumbs=extra.pop("crumbs", _crumbs(region, lang)), subtitle=extra.pop("subtitle", ""),
        children=[{"code": c.code, "name": _name(c, lang)} for c in region.children],
        ranges=list(RANGES), charts_available=echarts_path() is not None, **extra,
    )
    resp = Response(html, mimetype="text/html")
    if request.args.get("lang") == lang:
        resp.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="Lax")
    return resp


@bp.get("/")
def home() -> BaseResponse:
    return region(principal().scope)


@bp.get("/r/<code>")
def region(code: str) -> BaseResponse:
    """A region's page; an ancestor of the caller's scope leads to the scope's own page."""
    tree = state().ctx.tree
    node = tree.find(code)
    if node is None:
        abort(404)
    where = relation(principal().scope, node.code)
    if where == "above":
        return redirect(f"/r/{principal().scope}")
    if where == "outside":
        abort(403)
    lang = _lang()
    title = _name(node, lang)
    if node.level == "district":
        return _render("pages/district.html", "district", title, node, lang)
    if node.level == "township":
        return _render("pages/township.html", "township", title, node, lang)
    devices = state().ctx.registry.under(node.code)
    metrics = _metrics({m for d in devices for m in d.metrics}, lang)
    crops = [{"id": c.id, "name": c.name_en if lang == "en" else c.name_zh, "jin_per_mu": c.record_jin_per_mu}
             for c in state().ctx.catalogue.crops.values()]  # the form warns before sending an implausible 单产
    who = principal()
    year = datetime.fromtimestamp(now_ms() / 1000, state().ctx.settings.tz).year
    return _render("pages/village.html", "village", title, node, lang, metrics=metrics, crops=crops,
                   can_edit=who.may("editor"), plots=village_plots(state().ctx, state().store, node, year),
                   devices=[{"id": d.id, "metrics": list(d.metrics)} for d in devices],
                   page={"devices": [d.id for d in devices]})


@bp.get("/d/<device_id>")
def device(device_id: str) -> Response:
    ctx = state().ctx
    dev: Device | None = ctx.registry.find(device_id)
    if dev is None:
        abort(404)
    if not dev.village.startswith(principal().scope):
        abort(403)
    lang = _lang()
    t = strings(lang)
    village = ctx.tree.get(dev.village)
    crumbs = [*_crumbs(village, lang), {"name": dev.id, "href": f"/d/{dev.id}"}]
    return _render("pages/device.html", "device", dev.id, village, lang, crumbs=crumbs,
                   subtitle=t[f"kind_{dev.kind}"], kind_name=t[f"kind_{dev.kind}"],
                   village={"code": village.code, "name": _name(village, lang)},
                   metrics=_metrics(set(dev.metrics), lang),
                   page={"device": {"id": dev.id, "kind": dev.kind, "village": dev.village,
                                    "metrics": list(dev.metrics)}})


@bp.get("/vendor/echarts.min.js")
def echarts() -> Response:
    path = echarts_path()
    if path is None:
        abort(404, description="echarts.min.js is not in this installation: reinstall nongyun "
                               "(its build puts the file there from package-lock.json)")
    return send_file(path, mimetype="text/javascript", max_age=86400)


@bp.get("/r/<code>/yield-records.json")
def yield_records(code: str) -> Response:
    """Every record of a region's season, newest first, void ones too (the page shows their status):
    read page by page through the records' cursor, so nothing is cut off at a fixed count."""
    ctx = state().ctx
    part = narrow(ctx.tree, principal().scope, ctx.tree.get(code))
    tz = ctx.settings.tz
    year = _year(request.args.get("year"), tz)
    rows: list[YieldRecord] = []
    cursor: str | None = None
    while True:
        page = records_page(ctx, state().store, region=part.within.code, year=year, limit=1000, cursor=cursor)
        rows += page.records
        cursor = page.next
        if cursor is None:
            break
    return jsonify(records=[{
        "id": r.record_id, "status": r.status, "revision": r.revision, "entered_by": r.entered_by,
        "ts": format_local(r.ts, tz), "village": r.village, "crop": r.crop, "plot": r.plot,
        "device": r.device, "source": r.source,
        "area": half_up(area_out(r.area_ha, "cn")), "yield": half_up(yield_out(r.yield_kg, "cn")),
        "yield_per_area": half_up_or_none(per_area(r.yield_kg, r.area_ha, "cn")),
    } for r in rows])


def _year(text: str | None, tz: Any) -> int:
    if text is None:
        return datetime.fromtimestamp(now_ms() / 1000, tz).year
    if not (text.isascii() and text.isdigit() and len(text) == 4) or not 2000 <= int(text) <= 2100:
        raise BadInput("year: must be a year between 2000 and 2100", "year")
    return int(text)


@bp.get("/export/yields.<fmt>")
def export_yields(fmt: str) -> Response:
    if fmt not in ("xlsx", "csv"):
        abort(404)
    ctx = state().ctx
    code = request.args.get("region", ctx.tree.district.code)
    node = ctx.tree.find(code)
    if node is None:
        raise NotFound(f"no region with code {code!r}")
    try:
        node = narrow(ctx.tree, principal().scope, node).within  # above the scope: the scope's own table
    except Forbidden:
        abort(403)
    year = _year(request.args.get("year"), ctx.settings.tz)
    table = export.yields_table(ctx, state().store, node, year)
    body, mimetype = (export.to_xlsx(table), export.XLSX) if fmt == "xlsx" else (export.to_csv(table), export.CSV)
    resp = Response(body, mimetype=mimetype)
    resp.headers["Content-Disposition"] = export.disposition(table, fmt)
    return resp
