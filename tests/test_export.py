"""The yields export: .xlsx (opened with openpyxl) and .csv with Chinese headers and units, whose
figures equal GET /api/v1/yields for the same region and year."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from urllib.parse import unquote
from zoneinfo import ZoneInfo

import pytest
from flask.testing import FlaskClient
from openpyxl import load_workbook

from service.context import Context
from service.records import Batch
from service.store.sqlite import SqliteStore
from tests.web_support import crop_yield, get_json

ZX, YML = "211204101", "211204102"
DMT, XJT, QYM = "211204101200", "211204101202", "211204102200"
TZ = ZoneInfo("Asia/Shanghai")

@pytest.fixture
def harvests(store: SqliteStore) -> None:
    store.write(Batch(yields=[
        crop_yield(DMT, "2025-10-08T09:00", "corn", 30.5, 35_000.5, plot="P1"),
        crop_yield(DMT, "2025-10-09T10:00", "soybean", 12.25, 3_700),
        crop_yield(XJT, "2025-10-10T11:00", "corn", 41.75, 48_333.3),
        crop_yield(QYM, "2025-10-11T08:30", "rice", 18, 20_500),
        crop_yield(QYM, "2025-01-01T00:30", "corn", 1, 1_100),  # 00:30 Beijing: 2025 even though UTC says 2024
        crop_yield(DMT, "2024-10-08T09:00", "corn", 500, 600_000),  # last season: not in 2025
    ]))


def rows_of(ws: object) -> list[list[object]]:
    return [list(r) for r in ws.iter_rows(values_only=True)]  # type: ignore[attr-defined]


@pytest.mark.parametrize("region", ["211204", ZX, DMT])
def test_xlsx_totals_equal_the_api(client: FlaskClient, harvests: None, region: str) -> None:
    api = get_json(client, "/api/v1/yields", region=region, year=2025)
    resp = client.get(f"/export/yields.xlsx?region={region}&year=2025")
    assert resp.status_code == 200
    assert resp.mimetype == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert f"yields-{region}-2025.xlsx" in resp.headers["Content-Disposition"]
    wb = load_workbook(io.BytesIO(resp.data))
    assert wb.sheetnames == ["产量汇总", "收获记录"]
    rows = rows_of(wb["产量汇总"])
    assert str(rows[0][0]).endswith("2025年 粮食产量汇总")
    assert rows[1][2:] == ["记录数（条）", "收获面积（亩）", "产量（斤）", "亩产（斤/亩）"]
    body, total = rows[2:-1], rows[-1]
    assert [r[0] for r in body] == [g["key"] for g in api["groups"]]
    for row, g in zip(body, api["groups"], strict=True):
        assert row[1:] == [g["name"], g["records"], g["area"], g["yield"], g["yield_per_area"]]
    t = api["total"]
    assert total[1:] == ["合计", t["records"], t["area"], t["yield"], t["yield_per_area"]]
    detail = rows_of(wb["收获记录"])
    assert len(detail) - 2 == t["records"]
    assert sum(float(r[6]) for r in detail[2:]) == pytest.approx(t["yield"])  # type: ignore[arg-type]


def test_xlsx_of_the_district_in_numbers(client: FlaskClient, harvests: None) -> None:
    wb = load_workbook(io.BytesIO(client.get("/export/yields.xlsx?region=211204&year=2025").data))
    rows = rows_of(wb["产量汇总"])
    assert rows[1][:2] == ["乡镇（街道）代码", "乡镇（街道）"]
    by_key = {r[0]: r for r in rows[2:-1]}
    assert by_key[ZX][2:5] == [3, 84.5, 87_033.8]
    assert by_key[YML][2:5] == [2, 19.0, 21_600.0]
    assert rows[-1][2:] == [5, 103.5, 108_633.8, round(108_633.8 / 103.5, 2)]
    detail = rows_of(wb["收获记录"])
    assert detail[1][5:8] == ["面积（亩）", "产量（斤）", "亩产（斤/亩）"]
    assert [datetime(2025, 1, 1, 0, 30), "杨木林子镇", "前杨木林子村", "玉米", None, 1.0, 1100.0, 1100.0,
            "人工录入", None, None, "待审核"] in [r[:-1] for r in detail]
    ids = [r[-1] for r in detail[2:]]
    assert len(set(ids)) == len(ids) == 5 and all(ids)  # 编号: each record's id, for an exact re-import


def test_detail_rows_carry_the_plots_name_and_area_groups(client: FlaskClient, store: SqliteStore,
                                                          ctx: Context) -> None:
    demo = ctx.land.plots(group="kendi-demo")[0]
    plain = next(p for p in ctx.land.in_village(DMT) if not p.groups)
    store.write(Batch(yields=[crop_yield(demo.village, "2025-10-08T09:00", "corn", 50, 65_000, plot=demo.id),
                              crop_yield(DMT, "2025-10-09T09:00", "corn", 40, 46_000, plot=plain.id)]))
    wb = load_workbook(io.BytesIO(client.get("/export/yields.xlsx?region=211204101&year=2025").data))
    detail = rows_of(wb["收获记录"])
    assert detail[1][-5:] == ["来源", "地块名称", "片区", "状态", "编号"]
    by_plot = {r[4]: r for r in detail[2:]}
    assert by_plot[demo.id][-4:-2] == [demo.name, "垦地共建示范区"]
    assert by_plot[plain.id][-4:-2] == [plain.name, None]  # no group: an empty cell


def test_csv_equals_the_api_and_opens_in_excel(client: FlaskClient, harvests: None) -> None:
    api = get_json(client, "/api/v1/yields", region=ZX, year=2025)
    resp = client.get(f"/export/yields.csv?region={ZX}&year=2025")
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    assert resp.data.startswith("\ufeff".encode())  # Excel reads UTF-8 only with the BOM
    assert unquote(resp.headers["Content-Disposition"]).endswith("张相镇2025年产量.csv")
    rows = list(csv.reader(io.StringIO(resp.data.decode("utf-8-sig"))))
    assert rows[0] == ["村（社区）代码", "村（社区）", "记录数（条）", "收获面积（亩）", "产量（斤）", "亩产（斤/亩）"]
    assert len(rows) - 2 == len(api["groups"]) == 15
    total = rows[-1]
    assert total[1] == "合计"
    t = api["total"]
    assert [int(total[2]), float(total[3]), float(total[4]), float(total[5])] == [
        t["records"], t["area"], t["yield"], t["yield_per_area"]]
    empty = next(r for r in rows if r[0] == "211204101001")  # a community without harvests
    assert empty[2:] == ["0", "0.0", "0.0", ""]


def test_export_refuses_bad_parameters(client: FlaskClient) -> None:
    resp = client.get("/export/yields.xlsx?region=211204&year=20x5")
    assert resp.status_code == 400 and resp.get_json()["error"]["field"] == "year"
    assert client.get("/export/yields.csv?region=211204999").status_code == 404
    assert client.get("/export/yields.pdf?region=211204").status_code == 404


def test_a_plot_id_that_looks_like_a_formula_stays_text(client: FlaskClient, store: SqliteStore) -> None:
    evil = '=HYPERLINK("http://evil.example","点击查看")'
    store.write(Batch(yields=[crop_yield(DMT, "2025-10-08T09:00", "corn", 3, 3_600, plot=evil)]))
    wb = load_workbook(io.BytesIO(client.get(f"/export/yields.xlsx?region={DMT}&year=2025").data))
    cells = [c for ws in wb.worksheets for row in ws.iter_rows() for c in row if c.value == evil]
    assert cells and all(c.data_type == "s" for c in cells)


@pytest.mark.parametrize("region", [DMT, DMT[:9], DMT[:6]])
def test_a_control_character_in_a_plot_id_does_not_break_the_workbook(client: FlaskClient, store: SqliteStore,
                                                                      region: str) -> None:
    store.write(Batch(yields=[crop_yield(DMT, "2025-10-08T09:00", "corn", 3, 3_600, plot="A\x0b-3\x00")]))
    resp = client.get(f"/export/yields.xlsx?region={region}&year=2025")
    assert resp.status_code == 200
    wb = load_workbook(io.BytesIO(resp.data))
    assert "A-3" in [c.value for row in wb["收获记录"].iter_rows() for c in row]


def test_csv_says_its_charset_once_and_xlsx_times_are_local_excel_dates(client: FlaskClient, harvests: None) -> None:
    resp = client.get(f"/export/yields.csv?region={ZX}&year=2025")
    assert resp.headers["Content-Type"] == "text/csv; charset=utf-8"  # issue 19: it said charset twice
    wb = load_workbook(io.BytesIO(client.get(f"/export/yields.xlsx?region={QYM}&year=2025").data))
    ws = wb["收获记录"]
    cells = {c.value: c for c in (row[0] for row in ws.iter_rows(min_row=3))}
    # 00:30 on New Year's Day in Beijing (16:30 UTC the day before): the local time, as a date cell
    new_year = cells[datetime(2025, 1, 1, 0, 30)]
    assert new_year.is_date and "yyyy" in new_year.number_format  # a number with a date format, not text
    assert set(cells) == {datetime(2025, 1, 1, 0, 30), datetime(2025, 10, 11, 8, 30)}
