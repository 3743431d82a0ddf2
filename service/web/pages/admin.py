"""The admins' registry page: devices and plots in force, with add, move and retire forms.

The same strict checks as ``nongyun devices|plots`` (``LiveRegistries`` in registry_changes.py), so a
form refuses exactly what the command refuses; the change goes to the shared change log, and every
other process picks it up at its next poll. Admin role only (403 for others), and only inside the
admin's scope. Its wording lives here, beside the account page's (web/auth.py), Chinese by default.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Response, abort, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from ...errors import BadInput
from ...registry_changes import LiveRegistries, new_device_credential
from ...times import now_ms
from ..auth import require_page
from ..state import state
from .views import bp

TEXT: dict[str, tuple[str, str]] = {
    "title": ("设备与地块管理", "Devices and plots"),
    "devices": ("设备", "Devices"), "plots": ("地块", "Plots"),
    "id": ("编号", "Id"), "kind": ("类型", "Kind"), "village": ("村（12位代码）", "Village (12-digit code)"),
    "metrics": ("指标（逗号分隔）", "Metrics (comma-separated)"), "area_mu": ("面积（亩）", "Area (亩)"),
    "name": ("名称", "Name"), "groups": ("片区（逗号分隔）", "Area groups (comma-separated)"),
    "add_device": ("新增设备", "Add a device"), "add_plot": ("新增地块", "Add a plot"),
    "add": ("新增", "Add"), "move": ("迁移", "Move"), "retire": ("停用", "Retire"),
    "note": ("修改记入变更日志，所有进程在一分钟内生效，无需重启；设备迁移后历史数据仍归原村。",
             "Changes go to the change log; every process applies them within a minute, no restart; a moved "
             "device's history stays in the village where it was measured."),
    "credential": ("设备密码（只显示这一次）：", "Device password (shown only now):"),
    "broker_note": ("请运行 nongyun broker-config 并重新加载 MQTT 服务器。",
                    "Run nongyun broker-config and reload the broker."),
    # asked before a retire is sent (static/confirm.js), and the ways back
    "confirm_retire_device": ("确定停用设备 {id}？停用后不再接收它的数据（历史数据保留）。",
                              "Retire the device {id}? Its data is no longer accepted (its history stays)."),
    "confirm_retire_plot": ("确定停用地块 {id}？停用后新的收获记录不能再选它（已有记录保留）。",
                            "Retire the plot {id}? New harvest records can no longer name it (records stay)."),
    "back_dashboard": ("返回看板", "Back to the dashboards"), "accounts": ("账号管理", "Accounts"),
    # a refused change, by the field at fault: the page's words, the English detail only in the log
    "err_id": ("编号有误：新增时不能与已有编号重复，迁移或停用时须是已登记的编号",
               "The id is wrong: a new one must be unused, a moved or retired one registered"),
    "err_village": ("请填写您管辖范围内的 12 位村代码（地区树中的村）",
                    "Give the 12-digit code of a village of the region tree inside your scope"),
    "err_area_mu": ("面积请填写亩数（大于 0 的数字）", "Give the area in 亩 (a number above 0)"),
    "err_other": ("未能保存：类型、指标、面积或片区有误，请检查填写内容",
                  "Not saved: the kind, metrics, area or area groups are not valid; check the form"),
}


log = logging.getLogger(__name__)
MAX_PLOTS = 300  # rows of plots on one page; ?region= narrows it


def _lang() -> int:
    return 1 if request.args.get("lang") == "en" or request.cookies.get("nongyun_lang") == "en" else 0


def _live() -> LiveRegistries:
    live = state().ctx.live
    if live is None:
        abort(404)
    return live


def _page(scope: str, status: int = 200, error: str = "", credential: tuple[str, str] | None = None) -> Response:
    lang = _lang()
    ctx = state().ctx
    names = {r.code: r.name for r in ctx.tree}
    devices = [{"id": d.id, "kind": d.kind, "village": d.village, "village_name": names.get(d.village, "")}
               for d in sorted(ctx.registry.under(scope), key=lambda d: d.id)]
    region = request.args.get("region", scope)  # a district holds thousands of plots: one region at a time
    region = region if region.startswith(scope) and region.isdigit() else scope
    plots = [{"id": p.id, "village": p.village, "village_name": names.get(p.village, ""), "name": p.name,
              "area_mu": round(p.area_ha * 15, 1)} for p in ctx.land.plots(region)[:MAX_PLOTS]]
    html = render_template("admin/registry.html", t={k: v[lang] for k, v in TEXT.items()},
                           lang="en" if lang else "zh", devices=devices, plots=plots, error=error,
                           credential=credential, scope=scope)
    return Response(html, status=status, mimetype="text/html")


def _inside(scope: str, village: str) -> str:
    if not village.startswith(scope):
        raise BadInput(f"village {village[:20]!r} lies outside your scope {scope}", "village")
    return village


def _csv(field: str) -> list[str]:
    return [v.strip() for v in request.form.get(field, "").split(",") if v.strip()]


@bp.get("/admin/registry")
def registry_page() -> Response:
    return _page(require_page("admin").scope)


def _change(fn: Any) -> BaseResponse:
    who = require_page("admin")
    try:
        credential = fn(who.scope, f"web:{who.username or 'admin'}", now_ms())
    except BadInput as exc:
        log.info("registry form refused: %s", exc)
        key = f"err_{exc.field}" if f"err_{exc.field}" in TEXT else "err_other"
        return _page(who.scope, 400, TEXT[key][_lang()])
    if credential:
        return _page(who.scope, 201, credential=credential)
    return redirect(url_for("pages.registry_page"))


@bp.post("/admin/registry/devices")
def registry_device_add() -> BaseResponse:
    def add(scope: str, by: str, now: int) -> tuple[str, str]:
        f = request.form
        entry: dict[str, Any] = {"id": f.get("id", "").strip(), "kind": f.get("kind", ""),
                                 "village": _inside(scope, f.get("village", "").strip()), "metrics": _csv("metrics")}
        _live().add_device(entry, by, now)
        return entry["id"], new_device_credential(state().ctx.settings.data_dir, entry["id"], now)

    return _change(add)


def _device_in_scope(scope: str, device_id: str) -> None:
    dev = state().ctx.registry.find(device_id)
    if dev is None or not dev.village.startswith(scope):
        abort(404)


@bp.post("/admin/registry/devices/<device_id>/move")
def registry_device_move(device_id: str) -> BaseResponse:
    def move(scope: str, by: str, now: int) -> None:
        _device_in_scope(scope, device_id)
        _live().move_device(device_id, _inside(scope, request.form.get("village", "").strip()), by, now)

    return _change(move)


@bp.post("/admin/registry/devices/<device_id>/retire")
def registry_device_retire(device_id: str) -> BaseResponse:
    def retire(scope: str, by: str, now: int) -> None:
        _device_in_scope(scope, device_id)
        _live().retire_device(device_id, by, now)

    return _change(retire)


@bp.post("/admin/registry/plots")
def registry_plot_add() -> BaseResponse:
    def add(scope: str, by: str, now: int) -> None:
        f = request.form
        try:
            area = float(f.get("area_mu", ""))
        except ValueError:
            raise BadInput("area_mu: a number of 亩 is required", "area_mu") from None
        entry = {"id": f.get("id", "").strip(), "village": _inside(scope, f.get("village", "").strip()),
                 "area_mu": area, "name": f.get("name", "").strip(), "groups": _csv("groups")}
        _live().add_plot(entry, by, now)

    return _change(add)


def _plot_in_scope(scope: str, plot_id: str) -> None:
    plot = state().ctx.land.plot(plot_id)
    if plot is None or not plot.village.startswith(scope):
        abort(404)


@bp.post("/admin/registry/plots/<plot_id>/move")
def registry_plot_move(plot_id: str) -> BaseResponse:
    def move(scope: str, by: str, now: int) -> None:
        _plot_in_scope(scope, plot_id)
        _live().move_plot(plot_id, _inside(scope, request.form.get("village", "").strip()), by, now)

    return _change(move)


@bp.post("/admin/registry/plots/<plot_id>/retire")
def registry_plot_retire(plot_id: str) -> BaseResponse:
    def retire(scope: str, by: str, now: int) -> None:
        _plot_in_scope(scope, plot_id)
        _live().retire_plot(plot_id, by, now)

    return _change(retire)
