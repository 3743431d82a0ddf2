"""``/reports/moisture-weekly``: the weekly 墒情简报 of a region as a PDF or a workbook (a file, not JSON).

The advice file (config/moisture_advice.toml) is read when the app is made, like every config file,
so a malformed one stops the web process instead of failing a township's download. A missing
Chinese font answers 503 naming the package to install; the workbook needs no font and still works.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import quote

from flask import Response, current_app
from flask.sansio.blueprints import BlueprintSetupState
from pydantic import Field

from ...reports import pdf, xlsx
from ...reports.moisture_weekly import BriefConfig, IsoWeek, WeeklyBrief, weekly_brief
from ...times import local_date, now_ms
from ..auth import scoped
from ..errors import error_response
from ..state import EXTENSION, state
from .openapi import Route
from .params import RegionFilter, parse
from .routing import AUTH, bp, query_args, routes

CONFIG_KEY = "nongyun.moisture_brief"
MEDIA = {"pdf": pdf.MEDIA_TYPE, "xlsx": xlsx.MEDIA_TYPE}


class MoistureWeeklyParams(RegionFilter):
    week: str | None = Field(None, pattern=r"^[0-9]{4}-W[0-9]{2}$",
                             description="ISO week (Monday–Sunday, local days), e.g. 2026-W45; default: the last "
                                         "full week; a week that has not begun is refused")
    format: Literal["pdf", "xlsx"] = Field("pdf", description="pdf (default) or xlsx: the same content")
    lang: Literal["zh", "en"] = Field("zh", description="zh (default): the brief as the 墒情 network files it; "
                                                        "en: the same in English")


@bp.record_once
def _load_config(setup: BlueprintSetupState) -> None:
    ctx = setup.app.extensions[EXTENSION].ctx
    setup.app.extensions[CONFIG_KEY] = BriefConfig.load(Path(ctx.settings.config_dir))


def _config() -> BriefConfig:
    found = current_app.extensions[CONFIG_KEY]
    assert isinstance(found, BriefConfig)
    return found


def disposition(brief: WeeklyBrief, fmt: str) -> str:
    """An ASCII fallback name plus the Chinese one (RFC 5987), as the yields export names its files."""
    ascii_name = f"moisture-weekly-{brief.region.code}-{brief.week.label}.{fmt}"
    name = f"{brief.title}{brief.week.label}.{fmt}" if brief.lang == "zh" else ascii_name
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name)}"


@routes.add(Route("/reports/moisture-weekly", "GET", "the weekly 墒情简报 of a region, as PDF or xlsx", None,
                  params=MoistureWeeklyParams, errors=(400, *AUTH, 404, 503), files=tuple(MEDIA.values()),
                  description="One row per village with a soil station: its 7-day mean relative moisture, 墒情 "
                              "and drought grades, last week's and the change in percentage points; the drought "
                              "villages; advice per grade from config/moisture_advice.toml. Scoped like every "
                              "call: above the caller's scope, only the scope's villages. The PDF needs a font "
                              "with Chinese glyphs on the server (Debian: fonts-noto-cjk); without one it "
                              "answers 503 and the xlsx still works."))
def moisture_weekly_get() -> Response:
    st = state()
    p = parse(MoistureWeeklyParams, query_args())
    part = scoped(p.region)
    today = local_date(now_ms(), st.ctx.settings.tz)
    week = IsoWeek.parse(p.week, today) if p.week is not None else IsoWeek.last_full(today)
    config = _config()
    font = None
    if p.format == "pdf":
        try:
            font = pdf.find_font(config.font, config.font_index)  # before the queries: no work for nothing
        except pdf.FontMissing as exc:
            return error_response(503, f"the PDF brief cannot be made: {exc}; format=xlsx needs no font")
    brief = weekly_brief(st.ctx, st.store, part.region, week, config,
                         within=part.within if part.narrowed else None, lang=p.lang)
    body = pdf.render(brief, font) if font is not None else xlsx.render(brief)
    resp = Response(body, mimetype=MEDIA[p.format])
    resp.headers["Content-Disposition"] = disposition(brief, p.format)
    return resp

