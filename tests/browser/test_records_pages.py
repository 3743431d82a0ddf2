"""The harvest-record pages in a real browser: the township review queue approves and returns
records (a return needs a comment), and the import page checks a ledger, names its bad row, writes
nothing until the file is clean, then imports it. Each checks the outcome through the REST API."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest

from tests.browser.conftest import Live, open_page, screenshot, wait_js

pytestmark = pytest.mark.browser

ZX = "211204101"  # 张相镇
HEADER = ["收获时间", "乡镇（街道）", "村（社区）", "作物", "地块", "面积（亩）", "产量（斤）"]


def pending(live: Live) -> list[dict[str, Any]]:
    answer = live.get("/api/v1/yields/records", region=ZX, status="submitted", limit=1000)
    records: list[dict[str, Any]] = answer["records"]
    return records


def test_the_review_queue_approves_and_returns_with_a_comment(page: Any, live: Live) -> None:
    before = pending(live)
    assert before, "the seed enters submitted records"
    open_page(page, live, f"/review?region={ZX}")
    rows = page.eval_on_selector_all("#review-table tbody tr", "trs => trs.map(t => t.dataset.id)")
    assert rows == [r["id"] for r in before][:100]  # newest first, a page of 100
    assert page.text_content('#review [data-field="pending"]') == (f"{len(rows)}+" if len(before) > 100
                                                                    else str(len(rows)))
    first, second = rows[0], rows[1]
    page.click(f'#review-table tr[data-id="{first}"] button[data-decision="approve"]')
    wait_js(page, f"!document.querySelector('#review-table tr[data-id=\"{first}\"]')")
    assert live.get(f"/api/v1/yields/records/{first}")["status"] == "approved"

    row = f'#review-table tr[data-id="{second}"]'
    page.click(f'{row} button[data-decision="return"]')  # no comment: refused on the page, nothing sent
    assert page.text_content(f"{row} .field-error") == "退回时请填写意见"
    assert live.get(f"/api/v1/yields/records/{second}")["status"] == "submitted"
    page.fill(f'{row} input[name="comment"]', "面积与地块登记不符，请核对")
    page.click(f'{row} button[data-decision="return"]')
    wait_js(page, f"!document.querySelector('#review-table tr[data-id=\"{second}\"]')")
    assert live.get(f"/api/v1/yields/records/{second}")["status"] == "returned"
    [*_, last] = live.get(f"/api/v1/yields/records/{second}/history")["revisions"]
    assert (last["reason"], last["status"]) == ("面积与地块登记不符，请核对", "returned")
    # the township card counts what is approved and what still waits
    open_page(page, live, f"/r/{ZX}")
    approved = live.get("/api/v1/yields", region=ZX, year=live.seeded.year, status="approved")["total"]["records"]
    total = live.get("/api/v1/yields", region=ZX, year=live.seeded.year)["total"]["records"]
    assert page.get_attribute(f'#card-{ZX} [data-field="review"]', "data-value") == f"{approved}/{total - approved}"
    assert approved >= 1
    screenshot(page, "review-queue")


def _ledger(rows: list[list[object]]) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerows([HEADER, *rows])
    return buf.getvalue().encode("utf-8-sig")


def test_the_import_page_checks_first_names_the_bad_row_then_imports(page: Any, live: Live) -> None:
    year = live.seeded.year - 1
    rows: list[list[object]] = [[f"{year}-09-{20 + i} 10:00", "张相镇", "大孟屯村", "玉米", "", 20, 22_000 + i]
                                for i in range(5)]
    rows[3][6] = 900_000  # 45,000 斤/亩: implausible
    count = lambda: len(live.get("/api/v1/yields/records", region="211204101200", source="import",  # noqa: E731
                                 limit=1000)["records"])
    before = count()
    open_page(page, live, f"/import?region={ZX}")
    page.set_input_files('#import-form input[name="file"]',
                         {"name": "台账.csv", "mimeType": "text/csv", "buffer": _ledger(rows)})
    page.click('#import-form button[type="submit"]')
    wait_js(page, "document.getElementById('import-form').dataset.state === 'checked'")
    assert page.text_content('#import-report [data-field="rejected"]') == "1"
    assert page.eval_on_selector_all("#import-errors tbody tr", "trs => trs.map(t => t.dataset.row)") == ["5"]
    assert "implausible_yield" in (page.text_content("#import-errors tbody") or "")
    assert page.is_disabled("#import-commit") and count() == before  # a dry run writes nothing

    rows[3][6] = 23_000
    page.set_input_files('#import-form input[name="file"]',
                         {"name": "台账.csv", "mimeType": "text/csv", "buffer": _ledger(rows)})
    page.click('#import-form button[type="submit"]')
    wait_js(page, "!document.getElementById('import-commit').disabled")
    assert page.text_content("#import-result") == "检查通过：5 行均可导入"
    page.click("#import-commit")
    wait_js(page, "document.getElementById('import-form').dataset.state === 'imported'")
    assert page.text_content("#import-result") == "已导入 5 行"
    assert count() == before + 5
    screenshot(page, "import")


DMT = "211204101200"  # 大孟屯村


def test_the_village_table_corrects_and_voids_with_a_reason_and_shows_the_history(page: Any, live: Live) -> None:
    year = live.seeded.year
    totals = lambda code: live.get("/api/v1/yields", region=code, year=year)["total"]  # noqa: E731
    before = {c: totals(c) for c in (DMT, ZX, "211204")}
    records = live.get(f"/r/{DMT}/yield-records.json", year=year)["records"]
    open_page(page, live, f"/r/{DMT}")
    assert page.get_attribute("#records-table", "data-count") == str(len(records))  # every record, none cut off
    assert page.locator("#records-table tbody tr").count() == min(50, len(records))
    target = next(r for r in records if r["status"] == "submitted")
    page.click(f'#records-table tr[data-id="{target["id"]}"] button')
    page.fill('#record-form input[name="yield_jin"]', str(target["yield"] + 1000))
    page.click('#record-form [data-action="save"]')  # no reason: refused on the page
    assert page.text_content('#record-form [data-error-for="reason"]') == "请填写原因"
    page.fill('#record-form input[name="reason"]', "称重单抄错")
    page.click('#record-form [data-action="save"]')
    wait_js(page, "!document.querySelector('#record-form [data-field=done]').hidden")
    wait_js(page, "document.querySelectorAll('#record-form [data-field=history] > li').length === 2")
    change = page.text_content('#record-form [data-field=history] > li[data-revision="2"] [data-change="yield_kg"]')
    assert change == f"产量（斤）：{target['yield']:,.0f} → {target['yield'] + 1000:,.0f}"
    for code in (DMT, ZX, "211204"):  # every tier's total moved by the correction, in the next answer
        assert totals(code)["yield"] == pytest.approx(before[code]["yield"] + 1000, abs=0.02)  # each total rounded
    page.fill('#record-form input[name="reason"]', "重复录入")
    page.click('#record-form [data-action="void"]')
    wait_js(page, f"document.querySelector('#records-table tr[data-id=\"{target['id']}\"]').dataset.status === 'void'")
    for code in (DMT, ZX, "211204"):
        assert totals(code)["records"] == before[code]["records"] - 1
    assert live.get(f"/api/v1/yields/records/{target['id']}")["status"] == "void"
    screenshot(page, "record-dialog")
