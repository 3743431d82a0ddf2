"""The weekly 墒情简报 (GET /api/v1/reports/moisture-weekly): ISO weeks, the advice file, the content
composed from moisture reports, the PDF (Chinese text that extracts and renders as glyphs, not boxes),
the workbook with the same content, and the endpoint on a real SQLite store."""

# ruff: noqa: F811  (pytest fixtures imported from tests/test_api_support.py are parameters here)

from __future__ import annotations

import functools
import io
import shutil
from collections.abc import Iterator
from dataclasses import replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pypdfium2 as pdfium
import pytest
from flask.testing import FlaskClient
from hypothesis import given, settings
from hypothesis import strategies as st
from openpyxl import load_workbook
from PIL import Image, ImageChops, ImageDraw, ImageFont

from service.context import Context, build
from service.errors import BadInput, SettingsError
from service.queries.moisture import MoistureGroup, MoistureReport
from service.records import Reading
from service.regions import RegionTree
from service.reports import pdf, xlsx
from service.reports.moisture_weekly import BriefConfig, IsoWeek, WeeklyBrief, compose
from service.settings import load
from service.store.influx import InfluxStore
from service.store.sqlite import SqliteStore
from service.times import local_date, now_ms
from service.web import create_app
from tests.access_support import DISTRICT, ZX, World, leaks, world  # noqa: F401 (fixture)
from tests.conftest import CONFIG
from tests.fake_influx import FakeInflux
from tests.store.influx_backends import fake_influx_store
from tests.test_api_support import TZ, api_ctx, api_settings, app, client, local_ms, seed, store  # noqa: F401

URL = "/api/v1/reports/moisture-weekly"
DMT, DETZ, DONGHUA, LAST = "211204101200", "211204101203", "211204101204", "211204101205"  # 张相镇's villages
DEJAVU = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")  # Debian's fonts-dejavu-core: no CJK


# -- ISO weeks ------------------------------------------------------------------------------------

def test_a_week_parses_to_its_monday_and_sunday_and_the_default_is_the_last_full_week() -> None:
    w = IsoWeek.parse("2026-W45", date(2026, 12, 1))
    assert (w.monday, w.sunday, w.label) == (date(2026, 11, 2), date(2026, 11, 8), "2026-W45")
    assert IsoWeek.last_full(date(2026, 11, 8)) == IsoWeek(2026, 44)  # Sunday: its week is not over
    assert IsoWeek.last_full(date(2026, 11, 9)) == IsoWeek(2026, 45)
    # across the year boundary: 2026-01-01 is a Thursday of 2026-W01, which began on 2025-12-29
    assert IsoWeek.last_full(date(2026, 1, 1)) == IsoWeek(2025, 52)
    assert IsoWeek(2026, 1).previous() == IsoWeek(2025, 52) and IsoWeek(2021, 1).previous() == IsoWeek(2020, 53)
    assert IsoWeek.parse("2020-W53", date(2026, 1, 1)).sunday == date(2021, 1, 3)


@pytest.mark.parametrize("text, why", [
    ("2025-W53", "2025 has no week 53"), ("2026-W00", "no week 0"), ("2026-W45 ", "not an ISO week"),
    ("2026W45", "not an ISO week"), ("2026-w45", "not an ISO week"), ("２０２６-W45", "not an ISO week"),
    ("1999-W10", "between 2000 and 2100"), ("2026-W50", "has not begun"),
])
def test_a_bad_or_future_week_is_refused_naming_the_parameter(text: str, why: str) -> None:
    with pytest.raises(BadInput) as err:
        IsoWeek.parse(text, date(2026, 12, 6))
    assert err.value.field == "week"
    assert why.split()[-1] in str(err.value) or "ISO week" in str(err.value)


@given(st.dates(date(2000, 1, 17), date(2100, 12, 31)))
def test_the_last_full_week_ended_before_the_day_and_at_most_a_week_before(day: date) -> None:
    w = IsoWeek.last_full(day)
    assert w.monday.isoweekday() == 1 and w.sunday - w.monday == timedelta(days=6)
    assert w.sunday < day <= w.sunday + timedelta(days=7)
    assert IsoWeek.parse(w.label, day) == w  # its label parses back to it


# -- the advice file ------------------------------------------------------------------------------

def test_the_shipped_advice_covers_every_grade_and_drought_grade() -> None:
    cfg = BriefConfig.load(CONFIG)
    assert list(cfg.grades) == ["过多", "适宜", "轻度不足", "不足", "严重不足"]
    assert list(cfg.drought) == ["轻旱", "中旱", "重旱", "特旱"]
    assert "灌溉" in cfg.grades["不足"].zh and cfg.grades["不足"].en
    assert (cfg.font, cfg.font_index) == ("", 0)


@pytest.mark.parametrize("text, match", [
    ('[grades."很干"]\nzh = "x"\n', "is not a grade"),
    ('[grades."适宜"]\nen = "only English"\n', "non-empty zh"),
    ('[drought."无旱"]\nzh = "x"\n', "is not a grade"),
    ('[pdf]\nfont_index = -1\n', "font_index"),
    ('[pdf]\nfont = 3\n', "font must be a path"),
    ('[advice]\n', "unknown sections"),
    ('[grades\n', "cannot read"),
])
def test_a_malformed_advice_file_is_a_settings_error(tmp_path: Path, text: str, match: str) -> None:
    (tmp_path / "moisture_advice.toml").write_text(text, encoding="utf-8")
    with pytest.raises(SettingsError, match=match):
        BriefConfig.load(tmp_path)
    assert BriefConfig.load(tmp_path / "nowhere") == BriefConfig()  # no file: no advice, fontconfig's font


# -- the content, from moisture reports built as data ---------------------------------------------------

def _group(code: str, name: str, pct: float | None, grade: str | None = None, drought: str | None = None,
           graded: int = 1, frozen: int = 0, missing: int = 0) -> MoistureGroup:
    return MoistureGroup(code, name, pct, grade, drought, {grade: graded} if grade else {}, frozen, 0, missing)


def _brief(api_ctx: Context, scope: str | None = None) -> WeeklyBrief:
    tree = api_ctx.tree
    zx = tree.get(ZX)
    names = {v.code: v.name_zh for v in zx.villages()}
    this = MoistureReport(ZX, date(2026, 11, 2), 7, [
        _group(DMT, names[DMT], 70.04, "适宜", "无旱", graded=2),
        _group(DETZ, names[DETZ], 45.0, "不足", "中旱", graded=2),
        _group(DONGHUA, names[DONGHUA], None, frozen=1),
        _group(LAST, names[LAST], 28.95, "严重不足", "特旱"),
        *[_group(v.code, v.name_zh, None) for v in zx.villages() if v.code not in (DMT, DETZ, DONGHUA, LAST)],
    ], _group(ZX, zx.name_zh, 51.2, "轻度不足", "轻旱", graded=5))
    last = MoistureReport(ZX, date(2026, 10, 26), 7, [
        _group(DMT, names[DMT], 80.0, "适宜", "无旱", graded=2), _group(DETZ, names[DETZ], 55.0, "轻度不足", "轻旱"),
        _group(DONGHUA, names[DONGHUA], 70.0, "适宜", "无旱"),
    ], _group(ZX, zx.name_zh, 68.0, "适宜", "无旱", graded=5))
    return compose(tree, zx, IsoWeek(2026, 45), this, last, BriefConfig.load(CONFIG),
                   datetime(2026, 11, 9, 8, 30, tzinfo=TZ), scope)


def test_the_brief_lists_monitored_villages_with_last_weeks_figures_and_the_change(api_ctx: Context) -> None:
    b = _brief(api_ctx)
    rows = {r.code: r for r in b.rows}
    assert list(rows) == [DMT, DETZ, DONGHUA, LAST]  # region-code order; villages without a station left out
    assert b.unmonitored == len(list(api_ctx.tree.get(ZX).villages())) - 4
    dmt = rows[DMT]
    assert (dmt.name, dmt.township, dmt.relative_pct, dmt.last_pct, dmt.change_pct) == ("大孟屯村", "张相镇", 70.0,
                                                                                        80.0, -10.0)
    assert (dmt.graded, dmt.stations) == (2, 2)
    assert rows[DONGHUA].relative_pct is None and rows[DONGHUA].change_pct is None and rows[DONGHUA].note() == "冻土 1"
    assert rows[LAST].last_pct is None and rows[LAST].change_pct is None  # no figure last week: no change
    assert b.total.change_pct == -16.8 and b.total.grade == "轻度不足"
    assert [r.code for r in b.drought_rows] == [LAST, DETZ]  # 特旱 before 中旱; 无旱 is no drought
    assert [g for g, _ in b.advice] == ["适宜", "不足", "严重不足"]  # the grades present, wettest first
    assert [d for d, _ in b.drought_advice] == ["中旱", "特旱"]
    assert b.grade_counts() == {"过多": 0, "适宜": 1, "轻度不足": 0, "不足": 1, "严重不足": 1}
    assert "监测村 4 个（适宜 1 个、不足 1 个、严重不足 1 个）" in b.summary()
    assert "较上周减少 16.8 个百分点；旱情村 2 个。" in b.summary()
    assert b.period == "2026年第45周（11月2日—11月8日）" and b.title == "张相镇墒情简报"


# -- the PDF ------------------------------------------------------------------------------------------

def _pdf_text(data: bytes) -> str:
    doc = pdfium.PdfDocument(data)
    return "\n".join(doc[i].get_textpage().get_text_range() for i in range(len(doc)))


def _ink(im: Image.Image) -> Image.Image:
    """Black-on-white → a 1-bit mask of the ink, cut to its bounding box and scaled to 32 × 32."""
    mask = im.convert("L").point(lambda p: 255 if p < 128 else 0)
    box = mask.getbbox()
    return (mask.crop(box) if box else mask).resize((32, 32)).point(lambda p: 255 if p >= 128 else 0).convert("1")


def _overlap(a: Image.Image, b: Image.Image) -> float:
    """Intersection over union of two ink masks."""
    both = ImageChops.logical_and(a, b).histogram()[255]
    either = ImageChops.logical_or(a, b).histogram()[255]
    return both / either if either else 0.0


def _reference(ch: str, font: ImageFont.FreeTypeFont) -> Image.Image:
    """The glyph as FreeType (Pillow) draws it from the font file: an independent renderer."""
    im = Image.new("L", (160, 160), 255)
    ImageDraw.Draw(im).text((20, 20), ch, font=font, fill=0)
    return _ink(im)


def _rendered_glyphs(data: bytes, text: str, scale: float = 6) -> list[Image.Image]:
    """Each character of ``text`` (its first occurrence on page 1) cut from the page rendered by PDFium."""
    page = pdfium.PdfDocument(data)[0]
    tp = page.get_textpage()
    first = tp.get_text_range().index(text)
    bitmap = page.render(scale=scale).to_pil()
    height = page.get_height()
    out = []
    for k in range(len(text)):
        left, bottom, right, top = tp.get_charbox(first + k)
        out.append(_ink(bitmap.crop((int(left * scale) - 2, int((height - top) * scale) - 2,
                                     int(right * scale) + 2, int((height - bottom) * scale) + 2))))
    return out


def _are_these_glyphs(crops: list[Image.Image], refs: list[Image.Image]) -> bool:
    """Each crop has ink, matches its own character's reference glyph and not the others'. A missing
    glyph (.notdef, a box) fails: every box is the same shape and matches no character."""
    for k, crop in enumerate(crops):
        if crop.histogram()[255] < 0.05 * 32 * 32:
            return False
        own = _overlap(crop, refs[k])
        others = [_overlap(crop, r) for j, r in enumerate(refs) if j != k]
        if own < 0.5 or any(own - o < 0.2 for o in others):
            return False
    return True


def test_the_pdf_has_the_chinese_text_and_draws_it_as_glyphs_not_boxes(api_ctx: Context) -> None:
    font = pdf.find_font()
    data = pdf.render(_brief(api_ctx), font)
    assert data.startswith(b"%PDF-")
    text = _pdf_text(data)
    assert "张相镇墒情简报" in text and "大孟屯村" in text and "东二台子村" in text
    assert "适宜" in text and "中旱" in text and "-10.0" in text and "【不足】" in text
    assert "无土壤墒情站" in text
    probe = "墒情简报"
    refs = [_reference(ch, ImageFont.truetype(str(font.path), 96, index=font.index)) for ch in probe]
    assert _are_these_glyphs(_rendered_glyphs(data, probe), refs)
    assert _are_these_glyphs(_rendered_glyphs(data, "大孟屯村"),
                             [_reference(ch, ImageFont.truetype(str(font.path), 96, index=font.index))
                              for ch in "大孟屯村"])


_WORDS = st.lists(st.tuples(st.text(st.sampled_from("墒情适宜不足灌溉保苗village"), min_size=1, max_size=8),
                            st.sampled_from(["", "，", "。", "、", "；", "）", "%"])), min_size=1, max_size=40)


@functools.cache
def _empty_document() -> Any:
    """A brief's PDF document with the Chinese font set, to measure text in (made once: the font is big)."""
    tree = RegionTree.load(CONFIG / "regions.yaml")
    empty = MoistureReport(ZX, date(2026, 11, 2), 7, [], _group(ZX, "张相镇", None))
    doc = pdf._Brief(compose(tree, tree.get(ZX), IsoWeek(2026, 45), empty, empty, BriefConfig(),
                             datetime(2026, 11, 9, tzinfo=TZ)))
    font = pdf.find_font()
    doc.add_font(pdf.FAMILY, "", str(font.path), collection_font_number=font.index)
    doc.set_font(pdf.FAMILY, size=9.5)
    return doc


@settings(max_examples=60, deadline=None)
@given(_WORDS, st.floats(20, 180))
def test_paragraphs_wrap_within_the_width_and_no_line_starts_with_closing_punctuation(
        words: list[tuple[str, str]], width: float) -> None:
    text = "".join(w + p for w, p in words)
    doc = _empty_document()
    lines = pdf._lines(doc, text, width)
    assert "".join(lines) == text
    assert all(doc.get_string_width(line) <= width - 2 * doc.c_margin + 1e-6 for line in lines)
    assert not any(line[0] in pdf.NO_LINE_START for line in lines[1:])


@pytest.mark.skipif(not DEJAVU.is_file(), reason="needs Debian's fonts-dejavu-core")
def test_the_glyph_check_fails_on_boxes_of_a_font_without_chinese() -> None:
    """The check above can fail: DejaVu Sans has no 墒情简报, so FreeType draws its .notdef boxes."""
    font = pdf.find_font()
    refs = [_reference(ch, ImageFont.truetype(str(font.path), 96, index=font.index)) for ch in "墒情简报"]
    boxes = [_reference(ch, ImageFont.truetype(str(DEJAVU), 96)) for ch in "墒情简报"]
    assert not _are_these_glyphs(boxes, refs)
    assert _overlap(boxes[0], boxes[1]) > 0.95  # every missing character is the same box
    assert _are_these_glyphs(refs, refs)


def test_a_font_without_chinese_glyphs_or_no_font_file_is_refused_with_the_package_to_install(tmp_path: Path) -> None:
    if DEJAVU.is_file():
        with pytest.raises(pdf.FontMissing, match="has no Chinese glyphs; install Debian's fonts-noto-cjk"):
            pdf.find_font(str(DEJAVU))
    with pytest.raises(pdf.FontMissing, match="does not exist"):
        pdf.find_font(str(tmp_path / "missing.ttf"))
    broken = tmp_path / "broken.ttf"
    broken.write_bytes(b"not a font")
    with pytest.raises(pdf.FontMissing, match="no Chinese glyphs"):
        pdf.find_font(str(broken))


def test_fontconfig_finds_a_packaged_chinese_font() -> None:
    found = pdf.find_font()
    assert found.path.is_file() and str(found.path).startswith("/usr/share/fonts/")


# -- the workbook ---------------------------------------------------------------------------------

def _sheet_rows(data: bytes, sheet: str) -> list[dict[str, Any]]:
    ws = load_workbook(io.BytesIO(data), read_only=True)[sheet]
    rows = [list(r) for r in ws.iter_rows(values_only=True)]
    head = next(i for i, r in enumerate(rows) if r and r[0] in ("乡镇（街道）", "等级"))
    return [dict(zip(rows[head], r, strict=False)) for r in rows[head + 1:]]


def test_the_workbook_holds_the_same_content_as_the_pdf(api_ctx: Context) -> None:
    brief = _brief(api_ctx)
    data = xlsx.render(brief)
    wb = load_workbook(io.BytesIO(data))
    assert wb.sheetnames == ["各村墒情", "旱情村", "农事建议"]
    assert wb["各村墒情"]["A1"].value == "张相镇墒情简报"
    rows = _sheet_rows(data, "各村墒情")
    assert [r["村代码"] for r in rows] == [DMT, DETZ, DONGHUA, LAST, ZX]
    dmt = rows[0]
    keys = ("村（社区）", "相对含水量（%）", "墒情", "旱情", "上周相对含水量（%）", "较上周（百分点）",
            "评定站点", "站点")
    assert tuple(dmt[k] for k in keys) == ("大孟屯村", 70.0, "适宜", "无旱", 80.0, -10.0, 2, 2)
    assert rows[2]["冻土"] == 1 and rows[2]["相对含水量（%）"] is None
    assert rows[-1]["乡镇（街道）"] == "合计"
    assert [r["村（社区）"] for r in _sheet_rows(data, "旱情村")] == [brief.rows[3].name, "东二台子村"]
    assert [r["等级"] for r in _sheet_rows(data, "农事建议")] == ["适宜", "不足", "严重不足", "中旱", "特旱"]
    text = _pdf_text(pdf.render(brief, pdf.find_font()))
    for r in rows[:-1]:  # every figure of the workbook is printed in the PDF
        assert r["村（社区）"] in text
        for key in ("相对含水量（%）", "上周相对含水量（%）"):
            if r[key] is not None:
                assert f"{r[key]:.1f}" in text
    for _grade, advice in brief.advice:
        assert advice[:12] in text.replace("\n", "") and advice in [r["建议"] for r in _sheet_rows(data, "农事建议")]


# -- the endpoint, on a real store ----------------------------------------------------------------------

def _day_readings(device: str, village: str, day: date, moisture: float, soil_temp: float) -> list[Reading]:
    return [Reading(device, village, local_ms(f"{day.isoformat()}T{h:02d}:00"),
                    {"soil_moisture": moisture, "soil_temp": soil_temp}) for h in (2, 8, 14, 20)]


def _seed_weeks(store: SqliteStore, week: IsoWeek) -> None:
    """张相镇: 大孟屯村 70 % then 80 % of its loam's 29 % field capacity, 东二台子村 45 % then 55 %,
    东华村 frozen this week (70 % last week); 101205's station sends nothing."""
    readings: list[Reading] = []
    for k in range(7):
        this, last = week.monday + timedelta(days=k), week.previous().monday + timedelta(days=k)
        for n in (1, 2):
            readings += _day_readings(f"qh-st-101200-{n}", DMT, this, 20.3, 8.0)
            readings += _day_readings(f"qh-st-101200-{n}", DMT, last, 23.2, 12.0)
            readings += _day_readings(f"qh-st-101203-{n}", DETZ, this, 13.05, 8.0)
            readings += _day_readings(f"qh-st-101203-{n}", DETZ, last, 15.95, 12.0)
        readings += _day_readings("qh-st-101204-1", DONGHUA, this, 9.0, -3.0)
        readings += _day_readings("qh-st-101204-1", DONGHUA, last, 20.3, 12.0)
    seed(store, readings=readings)


def _last_full() -> IsoWeek:
    return IsoWeek.last_full(local_date(now_ms(), TZ))


def test_the_endpoint_answers_the_brief_as_pdf_and_xlsx_from_the_store(client: FlaskClient, store: SqliteStore) -> None:
    week = _last_full()
    _seed_weeks(store, week)
    resp = client.get(URL, query_string={"region": ZX, "week": week.label, "format": "xlsx"})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.mimetype == xlsx.MEDIA_TYPE
    assert resp.headers["Content-Disposition"] == (
        f"attachment; filename=\"moisture-weekly-{ZX}-{week.label}.xlsx\"; "
        f"filename*=UTF-8''%E5%BC%A0%E7%9B%B8%E9%95%87%E5%A2%92%E6%83%85%E7%AE%80%E6%8A%A5{week.label}.xlsx")
    rows = {r["村代码"]: r for r in _sheet_rows(resp.data, "各村墒情")}
    keys = ("相对含水量（%）", "墒情", "上周相对含水量（%）", "较上周（百分点）", "评定站点")
    assert tuple(rows[DMT][k] for k in keys) == (70.0, "适宜", 80.0, -10.0, 2)
    assert (rows[DETZ]["相对含水量（%）"], rows[DETZ]["墒情"], rows[DETZ]["旱情"], rows[DETZ]["上周墒情"]) == (
        45.0, "不足", "中旱", "轻度不足")
    dh = rows[DONGHUA]
    assert (dh["冻土"], dh["相对含水量（%）"], dh["上周相对含水量（%）"]) == (1, None, 70.0)
    assert (rows[LAST]["缺报"], rows[LAST]["评定站点"]) == (1, 0)
    # the total: the mean over every graded station-day, (4 × 70 + 4 × 45) / 8 this week, last week
    # (14 × 80 + 14 × 55 + 7 × 70) / 35 = 68.0
    assert (rows[ZX]["相对含水量（%）"], rows[ZX]["墒情"], rows[ZX]["上周相对含水量（%）"]) == (57.5, "轻度不足", 68.0)
    assert all(code.startswith(ZX) for code in rows)

    resp = client.get(URL, query_string={"region": ZX, "week": week.label})  # format defaults to pdf
    assert resp.status_code == 200 and resp.mimetype == "application/pdf"
    text = _pdf_text(resp.data)
    assert "张相镇墒情简报" in text and "大孟屯村" in text and f"{week.year}年第{week.week}周" in text
    assert "-10.0" in text and "57.5" in text
    assert resp.headers["Cache-Control"] == "no-store"


def test_without_a_week_the_brief_is_of_the_last_full_week(client: FlaskClient, store: SqliteStore) -> None:
    week = _last_full()
    _seed_weeks(store, week)
    resp = client.get(URL, query_string={"region": DMT, "format": "xlsx"})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert week.label in resp.headers["Content-Disposition"]
    rows = _sheet_rows(resp.data, "各村墒情")
    assert [r["村代码"] for r in rows] == [DMT, DMT]  # a village's brief: its own row and the total
    assert rows[0]["相对含水量（%）"] == 70.0


@pytest.mark.parametrize("query, field", [
    ({"week": "2026-45"}, "week"), ({"week": "2025-W53"}, "week"), ({"week": "2099-W01"}, "week"),
    ({"format": "docx"}, "format"), ({"region": "12345"}, "region"), ({"weeks": "2026-W01"}, "weeks"),
])
def test_bad_parameters_answer_400_with_the_error_body(client: FlaskClient, query: dict[str, str], field: str) -> None:
    resp = client.get(URL, query_string=query)
    assert resp.status_code == 400, resp.get_data(as_text=True)
    err = resp.get_json()["error"]
    assert err["code"] == "bad_request" and err["field"] == field and err["message"]


def test_an_unknown_region_is_404(client: FlaskClient) -> None:
    resp = client.get(URL, query_string={"region": "211204999"})
    assert resp.status_code == 404 and resp.get_json()["error"]["code"] == "not_found"


def _config_copy(tmp_path: Path, advice: str) -> Path:
    folder = tmp_path / "config"
    shutil.copytree(CONFIG, folder)
    (folder / "moisture_advice.toml").write_text(advice, encoding="utf-8")
    return folder


def test_without_a_chinese_font_the_pdf_answers_503_and_the_xlsx_still_works(tmp_path: Path) -> None:
    folder = _config_copy(tmp_path, f'[pdf]\nfont = "{tmp_path / "gone.otf"}"\n')
    settings = load(folder, env={}, overrides={"store.data_dir": str(tmp_path / "data"), "web.auth": "off"})
    store = SqliteStore(tmp_path / "s.sqlite3")
    try:
        client = create_app(build(settings), store).test_client()
        resp = client.get(URL, query_string={"region": ZX})
        assert resp.status_code == 503
        err = resp.get_json()["error"]
        assert err["code"] == "unavailable" and "fonts-noto-cjk" in err["message"] and "xlsx" in err["message"]
        assert client.get(URL, query_string={"region": ZX, "format": "xlsx"}).status_code == 200
    finally:
        store.close()


def test_a_malformed_advice_file_stops_the_app_at_start(tmp_path: Path, api_ctx: Context) -> None:
    folder = _config_copy(tmp_path, '[grades."湿"]\nzh = "x"\n')
    settings = replace(api_ctx.settings, config_dir=folder)
    store = SqliteStore(tmp_path / "s.sqlite3")
    try:
        with pytest.raises(SettingsError, match="is not a grade"):
            create_app(replace(api_ctx, settings=settings), store)
    finally:
        store.close()


def test_a_township_asking_for_the_district_gets_its_own_villages_only(world: World) -> None:
    for fmt in ("pdf", "xlsx"):
        resp = world.clients["township_viewer"].get(URL, query_string={"region": DISTRICT, "format": fmt})
        assert resp.status_code == 200, resp.get_data(as_text=True)
        if fmt == "pdf":
            text = _pdf_text(resp.data)
            assert "清河区墒情简报" in text and "仅含权限范围 张相镇（211204101）" in text.replace("\n", "")
        else:
            text = "\n".join(str(v) for r in _sheet_rows(resp.data, "各村墒情") for v in r.values())
        assert "大孟屯村" in text
        assert leaks(world.ctx, ZX, text) == []
    whole = world.clients["district_admin"].get(URL, query_string={"region": DISTRICT, "format": "xlsx"})
    assert leaks(world.ctx, ZX, "\n".join(str(v) for r in _sheet_rows(whole.data, "各村墒情") for v in r.values()))


def test_the_township_page_links_last_weeks_brief_in_both_formats(client: FlaskClient, store: SqliteStore) -> None:
    _seed_weeks(store, _last_full())
    for lang, label in (("zh", "上周墒情简报（PDF）"), ("en", "Last week&#39;s soil moisture brief (PDF)")):
        html = client.get(f"/r/{ZX}", query_string={"lang": lang}).get_data(as_text=True)
        assert label in html
    html = client.get(f"/r/{ZX}", query_string={"lang": "zh"}).get_data(as_text=True)
    for fmt, media in (("pdf", pdf.MEDIA_TYPE), ("xlsx", xlsx.MEDIA_TYPE)):
        href = f"{URL}?region={ZX}&amp;format={fmt}&amp;lang=zh"
        assert f'href="{href}" id="brief-{fmt}"' in html
        resp = client.get(href.replace("&amp;", "&"))
        assert resp.status_code == 200 and resp.mimetype == media


@pytest.fixture
def influx(fake: FakeInflux) -> Iterator[InfluxStore]:
    s = fake_influx_store(fake)
    yield s
    s.close()


def test_both_backends_give_the_same_brief(api_ctx: Context, store: SqliteStore, influx: InfluxStore) -> None:
    week = _last_full()
    query = {"region": ZX, "week": week.label, "format": "xlsx"}
    answers = []
    for backend in (store, influx):
        _seed_weeks(backend, week)
        resp = create_app(api_ctx, backend).test_client().get(URL, query_string=query)
        assert resp.status_code == 200, resp.get_data(as_text=True)
        answers.append(_sheet_rows(resp.data, "各村墒情"))
    assert answers[0] == answers[1]
    assert {r["村代码"]: r["相对含水量（%）"] for r in answers[1]}[DMT] == 70.0  # not all empty


def test_in_english_the_brief_says_the_same_in_english(client: FlaskClient, store: SqliteStore) -> None:
    week = _last_full()
    _seed_weeks(store, week)
    query = {"region": ZX, "week": week.label, "lang": "en"}
    text = " ".join(_pdf_text(client.get(URL, query_string=query).data).split())  # cells wrap English words
    assert "Zhangxiang Town soil moisture brief" in text and "Damengtun Village" in text
    assert "adequate" in text and "moderate" in text and "Villages in drought" in text
    assert "墒情" not in text  # nothing left in Chinese (the English advice comes from the config)
    resp = client.get(URL, query_string={**query, "format": "xlsx"})
    assert f'filename="moisture-weekly-{ZX}-{week.label}.xlsx"' in resp.headers["Content-Disposition"]
    wb = load_workbook(io.BytesIO(resp.data), read_only=True)
    assert wb.sheetnames == ["Villages", "Drought", "Advice"]
    rows = [list(r) for r in wb["Villages"].iter_rows(values_only=True)]
    head = next(i for i, r in enumerate(rows) if r[0] == "Township")
    dmt = dict(zip(rows[head], next(r for r in rows if r[2] == DMT), strict=True))
    assert (dmt["Village"], dmt["Relative moisture (%)"], dmt["Grade"], dmt["Change (points)"]) == (
        "Damengtun Village", 70.0, "adequate", -10.0)
