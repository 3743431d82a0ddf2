"""A region's yields table as .xlsx or .csv, the way a township reports upward.

The totals come from the very read model behind ``GET /api/v1/yields`` (``queries.yields``), so a
spreadsheet sent to the district never disagrees with what the API answers for the same region and
year; the detail sheet lists the individual harvest records behind them.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

from ...context import Context
from ...queries.yields import YieldsReport, yield_totals
from ...records import SOURCE_IMPORT, SOURCE_STAFF, YieldRecord
from ...regions import Region
from ...store import Store
from ...store.base import InRegion
from ...times import now_ms, year_bounds
from ...units import area_out, per_area, yield_out
from ..figures import half_up, half_up_or_none, totals_json

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV = "text/csv"  # Flask adds "; charset=utf-8" to every text/* type, once
GROUP_HEADER = {"township": "乡镇（街道）", "village": "村（社区）", "crop": "作物", "year": "年度"}
SUMMARY_HEADERS = ["代码", "名称", "记录数（条）", "收获面积（亩）", "产量（斤）", "亩产（斤/亩）"]
DETAIL_HEADERS = ["收获时间", "乡镇（街道）", "村（社区）", "作物", "地块", "面积（亩）", "产量（斤）", "亩产（斤/亩）",
                  "来源", "地块名称", "片区", "状态", "编号"]
# 地块名称, 片区: the registered plot's name and area groups; 编号: the record's id, so an edited export
# imported again corrects exactly the rows that changed, even two tickets of the same minute
SOURCE_ZH = {SOURCE_STAFF: "人工录入", SOURCE_IMPORT: "台账导入"}
STATUS_ZH = {"submitted": "待审核", "approved": "已审核", "returned": "已退回", "void": "已作废"}
RECORD_LIMIT = 100_000
DATETIME_FORMAT = "yyyy-mm-dd hh:mm:ss"


@dataclass(frozen=True)
class YieldsTable:
    region: Region
    year: int
    report: YieldsReport
    records: list[YieldRecord]
    ctx: Context

    @property
    def title(self) -> str:
        return f"{self.region.name_zh} {self.year}年 粮食产量汇总"

    def summary_rows(self) -> list[list[object]]:
        def row(key: str, name: str, figures: dict[str, object]) -> list[object]:
            return [key, name, figures["records"], figures["area"], figures["yield"], figures["yield_per_area"]]

        rows = [row(g.key, g.name, totals_json(g.totals, "cn")) for g in self.report.groups]
        rows.append(row("", "合计", totals_json(self.report.total, "cn")))
        return rows

    def detail_rows(self) -> list[list[object]]:
        tz = self.ctx.settings.tz
        tree, crops = self.ctx.tree, self.ctx.catalogue.crops
        land = self.ctx.land
        out: list[list[object]] = []
        for r in self.records:
            plot = land.plot(r.plot) if r.plot else None
            groups = [g.name for g in map(land.group, plot.groups) if g is not None] if plot else []
            town = tree.find(r.village[:9])
            village = tree.find(r.village)
            out.append([_local_datetime(r.ts, tz), town.name_zh if town else r.village[:9],
                        village.name_zh if village else r.village,
                        crops[r.crop].name_zh if r.crop in crops else r.crop, r.plot,
                        half_up(area_out(r.area_ha, "cn")), half_up(yield_out(r.yield_kg, "cn")),
                        half_up_or_none(per_area(r.yield_kg, r.area_ha, "cn")),
                        SOURCE_ZH.get(r.source) or r.device or r.source,
                        plot.name if plot else "", "、".join(groups), STATUS_ZH.get(r.status, r.status),
                        r.record_id])
        return out


def _local_datetime(ts: int, tz: ZoneInfo) -> datetime:
    """A harvest time as Excel keeps one: a date-time in the district's local time, without a zone
    (Excel has none), milliseconds kept, so a clerk can sort and filter the column as dates and an
    edited export imported again finds each record at its own time."""
    return datetime.fromtimestamp(ts // 1000, tz).replace(microsecond=ts % 1000 * 1000, tzinfo=None)


def yields_table(ctx: Context, store: Store, region: Region, year: int) -> YieldsTable:
    report = yield_totals(ctx, store, region=region.code, year=year, crop=None, group_by=None, now=now_ms())
    start, end = year_bounds(year, ctx.settings.tz)
    records = store.yield_records(InRegion.of(region), start, end, limit=RECORD_LIMIT)
    return YieldsTable(region, year, report, records, ctx)


def _sheet(wb: Workbook, title: str, heading: str, headers: list[str], rows: list[list[object]],
           bold_last: bool) -> None:
    ws = wb.create_sheet(title)
    ws.append([heading])
    ws["A1"].font = Font(bold=True, size=13)
    ws.append(headers)
    for cell in ws[2]:
        cell.font = Font(bold=True)
        cell.fill = PatternFill("solid", fgColor="E2EFDA")
        cell.alignment = Alignment(horizontal="center", wrap_text=True)
    for row in rows:
        ws.append([_cell_text(v) for v in row])
        for cell in ws[ws.max_row]:
            if isinstance(cell.value, str) and cell.data_type == "f":
                cell.data_type = "s"  # a plot id like "=HYPERLINK(...)" is text, never a formula
    if bold_last and rows:
        for cell in ws[ws.max_row]:
            cell.font = Font(bold=True)
    for i, header in enumerate(headers, start=1):
        width = max([len(header) * 2] + [len(str(r[i - 1])) + 2 for r in rows if i - 1 < len(r)])
        ws.column_dimensions[get_column_letter(i)].width = min(max(width, 8), 40)
    for row in ws.iter_rows(min_row=3):
        for cell in row:
            if isinstance(cell.value, float):
                cell.number_format = "#,##0.00"
            elif isinstance(cell.value, datetime):
                cell.number_format = DATETIME_FORMAT
    ws.freeze_panes = "A3"


def _cell_text(value: object) -> object:
    """Text a spreadsheet accepts: control characters (a plot id from a device may hold any) are
    dropped, which openpyxl would otherwise refuse for the whole workbook."""
    return ILLEGAL_CHARACTERS_RE.sub("", value) if isinstance(value, str) else value


def to_xlsx(table: YieldsTable) -> bytes:
    wb = Workbook()
    wb.remove(wb.active)  # type: ignore[arg-type]
    group = GROUP_HEADER.get(table.report.group_by, "分组")
    headers = [f"{group}代码", group, *SUMMARY_HEADERS[2:]]
    _sheet(wb, "产量汇总", table.title, headers, table.summary_rows(), bold_last=True)
    _sheet(wb, "收获记录", f"{table.region.name_zh} {table.year}年 收获记录明细", DETAIL_HEADERS,
           table.detail_rows(), bold_last=False)
    wb.properties.title = table.title
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def to_csv(table: YieldsTable) -> bytes:
    """UTF-8 with a BOM, so Excel on a township office PC opens the Chinese headers correctly."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    group = GROUP_HEADER.get(table.report.group_by, "分组")
    w.writerow([f"{group}代码", group, *SUMMARY_HEADERS[2:]])
    for row in table.summary_rows():
        w.writerow(["" if v is None else v for v in row])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def disposition(table: YieldsTable, fmt: str) -> str:
    """An ASCII fallback name plus the Chinese one (RFC 5987), which every current browser uses."""
    ascii_name = f"yields-{table.region.code}-{table.year}.{fmt}"
    name = f"{table.region.name_zh}{table.year}年产量.{fmt}"
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name)}"
