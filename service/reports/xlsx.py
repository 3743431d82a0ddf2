"""The weekly 墒情简报 as a workbook: the PDF's content with numbers a township can sort and sum.

Three sheets — 各村墒情 (the table with the summary above it), 旱情村, 农事建议 — in the order and
words of the PDF; figures are numbers, not text, so a 农技站 can chart them in Excel or WPS.
"""

from __future__ import annotations

import io

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from .moisture_weekly import Row, WeeklyBrief

MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
HEADERS = ["township", "village", "code", "relative", "grade", "drought", "last_relative", "last_grade", "change",
           "graded", "stations", "frozen", "anomalous", "missing"]  # keys of moisture_weekly.WORDS
# The PDF's fills, as hex.
GRADE_FILL = {"过多": "BDD7EE", "适宜": "C6EFCE", "轻度不足": "FFF2CC", "不足": "FCD5B4", "严重不足": "F4B0AC",
              "轻旱": "FFF2CC", "中旱": "FCD5B4", "重旱": "F4B0AC", "特旱": "E68C8C"}
HEAD_FILL = PatternFill("solid", fgColor="E2EFDA")


def _grade(b: WeeklyBrief, grade: str | None) -> str | None:
    return b.grade_name(grade) if grade is not None else None


def _values(b: WeeklyBrief, r: Row) -> list[object]:
    return [b.name(r.code[:9], r.township), b.name(r.code, r.name), r.code, r.relative_pct, _grade(b, r.grade),
            _grade(b, r.drought), r.last_pct, _grade(b, r.last_grade), r.change_pct, r.graded, r.stations,
            r.frozen, r.anomalous, r.missing]


def _header(ws: Worksheet, headers: list[str]) -> None:
    ws.append(headers)
    for cell in ws[ws.max_row]:
        cell.font = Font(bold=True)
        cell.fill = HEAD_FILL
        cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)


def _colour(ws: Worksheet, grades: dict[int, str | None]) -> None:
    """The last row: fills behind its grades (column number → grade), one decimal for its figures."""
    for cell in ws[ws.max_row]:
        fill = GRADE_FILL.get(grades.get(cell.column or 0) or "")
        if fill is not None:
            cell.fill = PatternFill("solid", fgColor=fill)
        if isinstance(cell.value, float):
            cell.number_format = "0.0"


def _row_grades(r: Row) -> dict[int, str | None]:
    return {5: r.grade, 6: r.drought, 8: r.last_grade}


def _widths(ws: Worksheet, widths: list[int]) -> None:
    for i, w in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(i)].width = w


def _villages(wb: Workbook, brief: WeeklyBrief) -> None:
    ws = wb.create_sheet(brief.t("sheet_villages"))
    ws.append([brief.title])
    ws["A1"].font = Font(bold=True, size=14)
    ws.append([brief.period])
    made = brief.t("generated", at=f"{brief.generated:%Y-%m-%d %H:%M}")
    ws.append([made + ("; " + brief.t("scope", scope=brief.scope) if brief.scope else "")])
    ws.append([brief.summary()])
    if brief.unmonitored:
        ws.append([brief.t("unmonitored", n=brief.unmonitored)])
    ws.append([])
    _header(ws, [brief.t(h) for h in HEADERS])
    ws.freeze_panes = f"C{ws.max_row + 1}"  # a coordinate, not ws.cell(): that would make an empty row
    for r in brief.rows:
        ws.append(_values(brief, r))
        _colour(ws, _row_grades(r))
    total = _values(brief, brief.total)
    total[0], total[1] = brief.t("total"), brief.name(brief.total.code, brief.total.name)
    ws.append(total)
    _colour(ws, _row_grades(brief.total))
    for cell in ws[ws.max_row]:
        cell.font = Font(bold=True)
    _widths(ws, [14, 16, 15, 11, 10, 8, 12, 10, 11, 8, 6, 6, 6, 6])


def _drought(wb: Workbook, brief: WeeklyBrief) -> None:
    ws = wb.create_sheet(brief.t("sheet_drought"))
    _header(ws, [brief.t(h) for h in ("township", "village", "code", "drought", "relative", "change")])
    for r in brief.drought_rows:
        ws.append([brief.name(r.code[:9], r.township), brief.name(r.code, r.name), r.code,
                   _grade(brief, r.drought), r.relative_pct, r.change_pct])
        _colour(ws, {4: r.drought})
    if not brief.drought_rows:
        ws.append([brief.t("no_drought")])
    _widths(ws, [14, 16, 15, 8, 12, 12])


def _advice(wb: Workbook, brief: WeeklyBrief) -> None:
    ws = wb.create_sheet(brief.t("sheet_advice"))
    _header(ws, [brief.t("level"), brief.t("advice")])
    for grade, text in [*brief.advice, *brief.drought_advice]:
        ws.append([brief.grade_name(grade), text])
        _colour(ws, {1: grade})
        ws.cell(row=ws.max_row, column=2).alignment = Alignment(wrap_text=True, vertical="top")
    if not brief.advice and not brief.drought_advice:
        ws.append(["—", brief.t("no_advice")])
    _widths(ws, [10, 90])


def render(brief: WeeklyBrief) -> bytes:
    wb = Workbook()
    wb.remove(wb.active)  # type: ignore[arg-type]
    _villages(wb, brief)
    _drought(wb, brief)
    _advice(wb, brief)
    wb.properties.title = f"{brief.title} {brief.week.label}"
    wb.properties.creator = "nongyun"
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
