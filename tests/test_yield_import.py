"""Harvest ledgers imported from .xlsx and .csv: the export's own workbook round-trips, bad rows are named
by row, column and code and nothing is written, a file imported twice is stored once, hostile files
give a file error, and the cell parsers read what clerks type (hypothesis)."""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from openpyxl import Workbook, load_workbook

from service.cli import main
from service.context import Context
from service.ledger_files import MAX_ROWS, CellError, parse_number, parse_time, read_table
from service.payloads import PayloadDecoder
from service.records import SOURCE_IMPORT, Batch, YieldRecord
from service.store.base import InRegion
from service.store.sqlite import SqliteStore
from service.times import now_ms, year_bounds
from service.units import ha_to_mu, kg_to_jin
from service.web.figures import half_up
from service.web.pages.export import DETAIL_HEADERS, to_xlsx, yields_table
from service.yield_import import ImportReport, RecordsSink, Sink, StoreSink, import_file
from tests.conftest import CONFIG
from tests.web_support import crop_yield, local_ms

TZ = ZoneInfo("Asia/Shanghai")
DMT, XJT, QYM = "211204101200", "211204101202", "211204102200"  # 大孟屯村, 谢家屯村 (张相镇), 前杨木林子村
HEADER = ["收获时间", "乡镇（街道）", "村（社区）", "作物", "地块", "面积（亩）", "产量（斤）"]


@pytest.fixture
def decoder(ctx: Context) -> PayloadDecoder:
    return PayloadDecoder(ctx.registry, ctx.catalogue, ctx.land, ctx.tree)


Sinks = Callable[[SqliteStore], Sink]


@pytest.fixture(params=["store", "records"])
def sinks(request: pytest.FixtureRequest, ctx: Context) -> Sinks:
    """Both implementations of the seam: over ``Store.write`` (points) and over the record store."""
    district = InRegion.of(ctx.tree.district)
    if request.param == "store":
        return lambda s: StoreSink(s, district)
    return lambda s: RecordsSink(s, district, now_ms())


def run(ctx: Context, decoder: PayloadDecoder, store: SqliteStore, content: bytes, name: str = "ledger.csv", *,
        sinks: Sinks | None = None, **kw: Any) -> ImportReport:
    sink = sinks(store) if sinks is not None else StoreSink(store, InRegion.of(ctx.tree.district))
    return import_file(ctx, decoder, sink, content, name, **kw)


def stored(store: SqliteStore) -> list[YieldRecord]:
    return store.yield_records(InRegion.of_code("211204"), 0, 2**62, limit=1_000_000)


def csv_bytes(rows: list[list[object]], header: list[str] = HEADER, encoding: str = "utf-8-sig") -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue().encode(encoding)


def codes(report: ImportReport) -> list[tuple[int | None, str | None, str]]:
    return [(e.row, e.field, e.code) for e in report.errors]


# -- the export's own workbook -------------------------------------------------------------------------


@pytest.fixture
def seeded(ctx: Context, store: SqliteStore) -> list[YieldRecord]:
    plots = ctx.land.in_village(DMT)
    records = [
        crop_yield(DMT, "2025-10-08T09:00", "corn", 30.5, 35_000.5, plot=plots[0].id),
        crop_yield(DMT, "2025-10-09T10:00", "soybean", 12.25, 3_700),
        crop_yield(XJT, "2025-10-10T11:00", "corn", 41.75, 48_333.3),
        crop_yield(QYM, "2025-10-11T08:30", "rice", 18, 20_500),
        crop_yield(QYM, "2025-01-01T00:30", "corn", 1, 1_100),  # 00:30 Beijing: 2025 in local time
        YieldRecord("harvester-1", DMT, local_ms("2025-10-12T15:20"), "corn", 2.1, 7_000.0, plots[1].id),
    ]
    store.write(Batch(yields=records))
    return records


def export_xlsx(ctx: Context, store: SqliteStore) -> bytes:
    return to_xlsx(yields_table(ctx, store, ctx.tree.get("211204"), 2025))


def figures(r: YieldRecord) -> tuple[str, str, int, str, float, float]:
    return r.village, r.plot, r.ts, r.crop, half_up(ha_to_mu(r.area_ha)), half_up(kg_to_jin(r.yield_kg))


def test_the_exports_workbook_imports_as_the_same_records(ctx: Context, decoder: PayloadDecoder, store: SqliteStore,
                                                         seeded: list[YieldRecord], tmp_path: Path,
                                                         sinks: Sinks) -> None:
    content = export_xlsx(ctx, store)
    fresh = SqliteStore(tmp_path / "fresh.sqlite3")
    try:
        report = run(ctx, decoder, fresh, content, "yields-211204-2025.xlsx", sinks=sinks, dry_run=False)
        assert report.errors == [] and report.rows == report.added == len(seeded) and report.written
        assert sorted(map(figures, stored(fresh))) == sorted(map(figures, seeded))
        assert {r.source for r in stored(fresh)} == {SOURCE_IMPORT}
    finally:
        fresh.close()
    again = run(ctx, decoder, store, content, "yields-211204-2025.xlsx", sinks=sinks, dry_run=False)  # its own
    assert (again.unchanged, again.added, again.corrected, again.written) == (len(seeded), 0, 0, False)
    assert len(stored(store)) == len(seeded)


def test_export_change_three_rows_import_changes_exactly_those(ctx: Context, decoder: PayloadDecoder,
                                                               store: SqliteStore, seeded: list[YieldRecord],
                                                               sinks: Sinks) -> None:
    wb = load_workbook(io.BytesIO(export_xlsx(ctx, store)))
    ws = wb["收获记录"]
    changed = {}
    for row in (3, 5, 7):  # data starts under the title (row 1) and the headers (row 2)
        ws.cell(row, 7).value = float(ws.cell(row, 7).value) + 100  # 产量（斤）
        changed[(ws.cell(row, 1).value, ws.cell(row, 4).value)] = ws.cell(row, 7).value
    buf = io.BytesIO()
    wb.save(buf)
    before = {r.record_id: r for r in stored(store)}
    report = run(ctx, decoder, store, buf.getvalue(), "edited.xlsx", sinks=sinks, dry_run=False)
    assert (report.corrected, report.unchanged, report.added, report.errors) == (3, len(seeded) - 3, 0, [])
    after = {r.record_id: r for r in stored(store)}
    assert after.keys() == before.keys()
    differ = [k for k in after if after[k] != before[k]]
    assert len(differ) == 3
    for k in differ:  # only the yield moved, by the 100 斤 typed in; the area kept its exact value
        assert after[k].area_ha == before[k].area_ha
        assert kg_to_jin(after[k].yield_kg) == pytest.approx(half_up(kg_to_jin(before[k].yield_kg)) + 100)


def test_excel_dates_and_numbers_typed_by_hand(ctx: Context, decoder: PayloadDecoder, store: SqliteStore) -> None:
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["本村收获台账"])  # a title above the headers, as clerks make them
    ws.append(HEADER)
    ws.append([datetime(2025, 10, 8, 9, 30), "张相镇", "大孟屯村", "玉米", None, 10, 11_000])
    ws.append(["2025/10/9", "张相镇", "谢家屯村", "大豆", None, "8.5亩", "2,550斤"])
    ws.append([45_940.5, "张相镇", "谢家屯村", "corn", None, "1.2万", "1,380万"])  # an Excel serial: 2025-10-10 12:00
    buf = io.BytesIO()
    wb.save(buf)
    report = run(ctx, decoder, store, buf.getvalue(), "台账.xlsx", dry_run=False)
    assert report.errors == [] and report.added == 3
    got = {(r.village, r.ts): (ha_to_mu(r.area_ha), kg_to_jin(r.yield_kg)) for r in stored(store)}
    assert got[(DMT, local_ms("2025-10-08T09:30"))] == pytest.approx((10, 11_000))
    assert got[(XJT, local_ms("2025-10-09T00:00"))] == pytest.approx((8.5, 2_550))
    assert got[(XJT, local_ms("2025-10-10T12:00"))] == pytest.approx((12_000, 13_800_000))


# -- bad rows: named, and nothing written ----------------------------------------------------------------


GOOD = [["2025-10-08 09:00", "张相镇", "大孟屯村", "玉米", "", "10", "11000"],
        ["2025-10-09 09:00", "张相镇", "谢家屯村", "大豆", "", "5", "1500"]]


def test_one_bad_row_dry_run_names_it_and_writes_nothing(ctx: Context, decoder: PayloadDecoder,
                                                         store: SqliteStore, sinks: Sinks) -> None:
    content = csv_bytes([GOOD[0], ["2025-10-08 10:00", "张相镇", "大孟屯村", "玉米", "", "十亩", "9000"], GOOD[1]])
    dry = run(ctx, decoder, store, content, sinks=sinks)
    assert codes(dry) == [(3, "面积（亩）", "bad_value")]
    assert dry.as_json()["errors"][0]["message"].startswith("面积（亩）：")  # Chinese by default
    assert "not a number" in dry.as_json()["errors"][0]["message_en"]
    assert (dry.rows, dry.accepted, dry.rejected, dry.written) == (3, 2, 1, False)
    assert stored(store) == []
    assert run(ctx, decoder, store, content, sinks=sinks, dry_run=False).written is False  # all or nothing
    assert stored(store) == []
    part = run(ctx, decoder, store, content, sinks=sinks, dry_run=False, partial=True)
    assert part.written and part.added == 2 and len(stored(store)) == 2


def test_each_rule_gives_its_code(ctx: Context, decoder: PayloadDecoder, store: SqliteStore) -> None:
    other_plot = ctx.land.in_village(QYM)[0].id
    rows = [
        ["2025-10-08 09:00", "张相镇", "大孟屯村", "苹果", "", "10", "11000"],
        ["2025-10-08 09:00", "张相镇", "没有这个村", "玉米", "", "10", "11000"],
        ["2025-10-08 09:00", "张相镇", "大孟屯村", "玉米", "NO-SUCH-PLOT", "10", "11000"],
        ["2025-10-08 09:00", "张相镇", "大孟屯村", "玉米", other_plot, "10", "11000"],
        ["2025-10-08 09:00", "张相镇", "大孟屯村", "玉米", "", "1", "900000"],  # 900,000 斤/亩
        ["2099-10-08 09:00", "张相镇", "大孟屯村", "玉米", "", "10", "11000"],
        ["2025-13-08 09:00", "张相镇", "大孟屯村", "玉米", "", "10", "11000"],
        ["2025-10-09 09:00", "张相镇", "大孟屯村", "玉米", "", "-3", "11000"],
        GOOD[0], GOOD[0],
    ]
    report = run(ctx, decoder, store, csv_bytes(rows))
    assert codes(report) == [
        (2, "作物", "unknown_crop"), (3, "村（社区）", "unknown_village"), (4, "地块", "unknown_plot"),
        (5, "地块", "plot_mismatch"), (6, "产量（斤）", "implausible_yield"), (7, "收获时间", "time_in_future"),
        (8, "收获时间", "bad_value"), (9, "面积（亩）", "out_of_range"), (11, "收获时间", "duplicate_row"),
    ]
    assert all(e["message"] and e["message_en"] for e in report.as_json()["errors"])


@pytest.mark.parametrize("age_days", [0, 364.9, 365.5, 366.5, 3 * 365])
def test_old_ledgers_are_welcome_the_future_is_not(ctx: Context, decoder: PayloadDecoder, store: SqliteStore,
                                                   age_days: float) -> None:
    now = local_ms("2026-10-20T12:00")
    when = datetime.fromtimestamp((now - age_days * 86_400_000) / 1000, TZ).strftime("%Y-%m-%d %H:%M:%S")
    ahead = datetime.fromtimestamp((now + 6 * 60_000) / 1000, TZ).strftime("%Y-%m-%d %H:%M:%S")
    rows = [[when, *GOOD[0][1:]], [ahead, *GOOD[1][1:]]]
    report = run(ctx, decoder, store, csv_bytes(rows), now=now)
    assert codes(report) == [(3, "收获时间", "time_in_future")]


def test_a_missing_column_is_named_on_the_header_row(ctx: Context, decoder: PayloadDecoder,
                                                     store: SqliteStore) -> None:
    content = csv_bytes([["2025-10-08 09:00", "张相镇", "大孟屯村", "玉米", "10"]], header=[*HEADER[:4], "面积（亩）"])
    assert codes(run(ctx, decoder, store, content)) == [(1, "产量（斤）", "missing_column")]


def test_an_id_column_names_the_record_to_correct(ctx: Context, decoder: PayloadDecoder, store: SqliteStore,
                                                  seeded: list[YieldRecord], sinks: Sinks) -> None:
    target = seeded[2]
    rows = [[target.record_id, "2025-10-10 11:00", "张相镇", "谢家屯村", "玉米", "", "41.75", "50000"],
            ["no such!", "2025-10-10 11:00", "张相镇", "谢家屯村", "玉米", "", "41.75", "50000"],
            ["other-site-7", "2025-10-10 12:00", "张相镇", "谢家屯村", "玉米", "", "20", "24000"]]
    report = run(ctx, decoder, store, csv_bytes(rows, header=["编号", *HEADER]), sinks=sinks, dry_run=False,
                 partial=True)
    assert codes(report) == [(3, "编号", "bad_value")]  # not an id at all
    assert (report.corrected, report.added) == (1, 1)  # an id this store lacks comes in under that id
    assert any(r.record_id == "other-site-7" for r in stored(store))
    now = next(r for r in stored(store) if r.record_id == target.record_id)
    assert kg_to_jin(now.yield_kg) == pytest.approx(50_000) and now.area_ha == target.area_ha


def test_rows_outside_the_importers_scope_are_refused(ctx: Context, decoder: PayloadDecoder,
                                                      store: SqliteStore) -> None:
    report = run(ctx, decoder, store, csv_bytes(GOOD), scope=XJT)
    assert codes(report) == [(2, "村（社区）", "out_of_scope")]


def test_a_thousand_rows_imported_twice_are_stored_once(ctx: Context, decoder: PayloadDecoder,
                                                        store: SqliteStore, sinks: Sinks) -> None:
    start = datetime(2025, 9, 20, 8, 0)
    rows = [[(start + timedelta(minutes=7 * i)).strftime("%Y-%m-%d %H:%M"), "张相镇",
             "大孟屯村" if i % 2 else "谢家屯村", "玉米", "", f"{10 + i % 7}", f"{(10 + i % 7) * 1_150:,}"]
            for i in range(1000)]
    content = csv_bytes(rows)
    first = run(ctx, decoder, store, content, sinks=sinks, dry_run=False)
    assert (first.added, first.errors) == (1000, [])
    second = run(ctx, decoder, store, content, sinks=sinks, dry_run=False)
    assert (second.added, second.unchanged, second.written) == (0, 1000, False)
    assert len(stored(store)) == 1000


def test_the_record_store_keeps_who_and_why_and_never_brings_a_void_row_back(
        ctx: Context, decoder: PayloadDecoder, store: SqliteStore) -> None:
    from service.harvest_records import Actor, void

    def sink() -> RecordsSink:
        return RecordsSink(store, InRegion.of(ctx.tree.district), now_ms())

    content = csv_bytes(GOOD)
    first = import_file(ctx, decoder, sink(), content, "台账.csv", dry_run=False, by="clerk")
    assert first.added == 2
    recs = {r.village: r for r in stored(store)}
    assert {(r.source, r.entered_by, r.status, r.revision) for r in recs.values()} == {
        (SOURCE_IMPORT, "clerk", "submitted", 1)}
    edited = csv_bytes([GOOD[0], [*GOOD[1][:6], "1600"]])
    second = import_file(ctx, decoder, sink(), edited, "台账.csv", dry_run=False, by="township")
    assert (second.corrected, second.unchanged) == (1, 1)
    last = store.record_history(recs[XJT].record_id)[-1]
    assert (last.revision, last.by, "row 3" in last.reason) == (2, "township", True)
    assert last.changes["yield_kg"] == [750.0, 800.0]
    void(store, recs[DMT].record_id, "a duplicate ticket", Actor("admin", "admin", "211204"), now_ms())
    third = import_file(ctx, decoder, sink(), edited, "台账.csv", dry_run=False, by="clerk")
    assert (third.added, third.unchanged, third.written) == (0, 2, False)  # the void row stays withdrawn
    by_id = csv_bytes([[recs[DMT].record_id, *GOOD[0]]], header=["编号", *HEADER])
    assert codes(import_file(ctx, decoder, sink(), by_id, "x.csv")) == [(2, "id", "void")]


# -- encodings and hostile files ------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["gb18030", "gbk", "utf-8", "utf-8-sig", "utf-16"])
def test_csv_in_every_encoding_excel_saves(ctx: Context, decoder: PayloadDecoder, store: SqliteStore,
                                           encoding: str) -> None:
    report = run(ctx, decoder, store, csv_bytes(GOOD, encoding=encoding))
    assert report.errors == [] and report.accepted == 2


def test_tab_separated_text_reads_too(ctx: Context, decoder: PayloadDecoder, store: SqliteStore) -> None:
    text = "\n".join("\t".join(r) for r in [HEADER, *GOOD])
    assert run(ctx, decoder, store, text.encode("utf-16")).accepted == 2


def zip_bomb(member: str, mib: int) -> bytes:
    """A real zip whose one member inflates to ``mib`` MiB of zeros (a thousandth of that compressed)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z, z.open(member, "w", force_zip64=True) as f:
        chunk = b"\0" * (1 << 20)
        for _ in range(mib):
            f.write(chunk)
    return buf.getvalue()


@pytest.mark.parametrize(("content", "name", "code"), [
    (csv_bytes(GOOD), "ledger.xlsx", "bad_file"),  # a CSV renamed .xlsx
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 600, "ledger.xlsx", "bad_file"),  # an Excel 97 .xls
    (b"PK\x03\x04 not really a zip", "ledger.xlsx", "bad_file"),
    (b"\xff\xd8\xff\xe0 a jpeg with an odd name \x00\x00", "ledger.csv", "bad_file"),
    (b"\x81\x30 broken", "ledger.csv", "bad_file"),  # neither UTF-8 nor GB18030
    (b"just some text\nwithout headers\n", "ledger.csv", "missing_column"),
])
def test_unreadable_files_give_one_file_error(ctx: Context, decoder: PayloadDecoder, store: SqliteStore,
                                              content: bytes, name: str, code: str) -> None:
    report = run(ctx, decoder, store, content, name)
    assert codes(report) == [(None, "file", code)]
    assert report.errors[0].message_en and report.as_json()["errors"][0]["message"]


def test_a_sheet_broken_half_way_is_a_file_error(ctx: Context, decoder: PayloadDecoder, store: SqliteStore) -> None:
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(HEADER)
    for _ in range(200):
        ws.append(GOOD[0])
    good = io.BytesIO()
    wb.save(good)
    broken = io.BytesIO()
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(broken, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            dst.writestr(item, data[: len(data) // 2] if item.filename.endswith("sheet1.xml") else data)
    assert codes(run(ctx, decoder, store, broken.getvalue(), "half.xlsx")) == [(None, "file", "bad_file")]


@pytest.mark.parametrize(("member", "mib"), [("xl/worksheets/sheet1.xml", 520), ("xl/sharedStrings.xml", 65)])
def test_a_zip_bomb_is_refused_before_it_inflates(ctx: Context, decoder: PayloadDecoder, store: SqliteStore,
                                                  member: str, mib: int) -> None:
    bomb = zip_bomb(member, mib)
    assert len(bomb) < 1 << 20
    assert codes(run(ctx, decoder, store, bomb, "bomb.xlsx")) == [(None, "file", "too_large")]


def test_too_many_rows(ctx: Context, decoder: PayloadDecoder, store: SqliteStore) -> None:
    content = csv_bytes([GOOD[0]] * (MAX_ROWS + 1))
    assert codes(run(ctx, decoder, store, content)) == [(None, "file", "too_many_rows")]


def test_formulas_are_never_evaluated(ctx: Context, decoder: PayloadDecoder, store: SqliteStore) -> None:
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(HEADER)
    ws.append(["2025-10-08 09:00", "张相镇", "大孟屯村", "玉米", None, 10, "=10*1100"])  # no saved value
    ws.append(["2025-10-09 09:00", "张相镇", "大孟屯村", "玉米", '=HYPERLINK("http://x","y")', 10, 11_000])
    buf = io.BytesIO()
    wb.save(buf)
    report = run(ctx, decoder, store, buf.getvalue(), "f.xlsx", dry_run=False, partial=True)
    assert codes(report) == [(2, "产量（斤）", "bad_record")]  # a formula without a saved value is an empty cell
    assert [r.plot for r in stored(store)] == [""]  # the formula's text is never taken as the plot


def test_every_column_of_the_export_is_read_or_known_to_be_output_only() -> None:
    table = read_table(csv_bytes([], header=DETAIL_HEADERS))
    assert table.ignored == []
    assert {"ts", "township", "village", "crop", "plot", "area_mu", "yield_jin"} <= set(table.columns)


# -- cell parsers ------------------------------------------------------------------------------------------


@given(st.decimals(min_value=0, max_value=10**9, places=2), st.sampled_from(["", "亩", " 亩"]),
       st.booleans(), st.booleans())
def test_numbers_as_clerks_type_them(value: Any, unit: str, thousands: bool, fullwidth: bool) -> None:
    text = f"{value:,.2f}" if thousands else f"{value:.2f}"
    if fullwidth:
        text = text.translate({ord(c): ord(c) + 0xFEE0 for c in "0123456789.,"})
    assert parse_number(text + unit, ["亩"]) == pytest.approx(float(value))


@pytest.mark.parametrize("text", ["1,5", "12.5公顷", "1e3", "--3", "十", "1.2.3", "12,50", "斤12"])
def test_numbers_that_are_refused(text: str) -> None:
    with pytest.raises(CellError):
        parse_number(text, ["亩"])


@given(st.text(max_size=30))
def test_any_text_is_a_number_or_a_cell_error(text: str) -> None:
    try:
        value = parse_number(text, ["斤"])
    except CellError:
        return
    assert value is None or value == value


@settings(max_examples=200)
@given(st.datetimes(min_value=datetime(2000, 1, 2), max_value=datetime(2099, 12, 30)),
       st.sampled_from(["%Y-%m-%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y年%m月%d日 %H时%M分", "%Y-%m-%dT%H:%M", "rfc3339",
                        "excel"]))
def test_times_as_clerks_type_them(dt: datetime, fmt: str) -> None:
    dt = dt.replace(microsecond=0)
    if "%S" not in fmt and fmt not in ("rfc3339", "excel"):
        dt = dt.replace(second=0)
    local = dt.replace(tzinfo=TZ)
    expected = int(local.timestamp() * 1000)
    if fmt == "rfc3339":
        cell: object = local.astimezone(UTC).isoformat()
    elif fmt == "excel":
        cell = dt  # openpyxl hands over an Excel date as a naive datetime
    else:
        cell = dt.strftime(fmt)
    assert parse_time(cell, TZ) == expected


@given(st.text(max_size=40) | st.floats() | st.integers())
def test_any_cell_is_a_time_or_a_cell_error(value: object) -> None:
    try:
        ms = parse_time(value, TZ)
    except CellError:
        return
    assert 946_684_800_000 <= ms < 4_102_444_800_000


def test_a_date_alone_is_local_midnight() -> None:
    assert parse_time("2025-10-08", TZ) == local_ms("2025-10-08T00:00")
    assert parse_time("2025年10月8日", TZ) == local_ms("2025-10-08T00:00")


# -- the command line ---------------------------------------------------------------------------------------


def test_the_cli_imports_with_a_progress_bar(tmp_path: Path, ctx: Context) -> None:
    ledger = tmp_path / "台账.csv"
    ledger.write_bytes(csv_bytes(GOOD, encoding="gb18030"))
    env = {"NONGYUN_CONFIG": str(CONFIG), "NONGYUN_DATA_DIR": str(tmp_path / "data")}
    runner = CliRunner()
    dry = runner.invoke(main, ["import", "yields", str(ledger), "--dry-run"], env=env)
    assert dry.exit_code == 0, dry.output
    assert "2 rows, 2 valid" in dry.stdout and "试导入" in dry.stdout
    assert "导入 importing" in dry.stderr
    done = runner.invoke(main, ["import", "yields", str(ledger), "--by", "clerk"], env=env)
    assert done.exit_code == 0 and "2 new" in done.stdout
    bad = tmp_path / "bad.csv"
    bad.write_bytes(csv_bytes([[*GOOD[0][:5], "x", "1"]]))
    refused = runner.invoke(main, ["import", "yields", str(bad), "--lang", "en"], env=env)
    assert refused.exit_code == 1 and "row 2  面积（亩）  bad_value" in refused.stderr
    start, end = year_bounds(2025, TZ)
    store = SqliteStore(tmp_path / "data" / "nongyun.sqlite3")
    try:
        assert len(store.yield_records(InRegion.of_code("211204"), start, end)) == 2
    finally:
        store.close()
