"""墒情 on the dashboards in a real browser: the village chip, a chip per village on the township
page and the district's grade distribution all equal GET /api/v1/moisture, in both languages."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import Live, assert_charts_drawn, open_page, screenshot

pytestmark = pytest.mark.browser

DISTRICT, ZX = "211204", "211204101"  # 清河区, 张相镇
DMT = "211204101200"  # 大孟屯村
GRADES = ["过多", "适宜", "轻度不足", "不足", "严重不足"]


def chip(tab: Any, selector: str) -> dict[str, Any]:
    found: dict[str, Any] = tab.eval_on_selector(
        selector, "el => ({text: el.textContent, value: el.dataset.value ?? null, cls: el.className})")
    return found


def test_the_village_chip_is_the_api_grade_in_both_languages(page: Any, live: Live) -> None:
    ans = live.get("/api/v1/moisture", region=DMT)
    g = ans["groups"][0]
    assert g["grade"] in GRADES  # the seeded week is graded: the chip must show a grade, not a blank
    open_page(page, live, f"/r/{DMT}")
    shown = chip(page, "#moisture-chip")
    assert shown["value"] == g["grade"] and shown["text"] == g["grade"]
    assert f"grade-{g['grade_en'].replace(' ', '-')}" in shown["cls"]
    assert f"{g['relative_pct']:.1f}" in (page.text_content("#moisture-relative") or "")
    screenshot(page, "village-moisture")
    open_page(page, live, f"/r/{DMT}?lang=en")
    shown = chip(page, "#moisture-chip")
    assert shown["value"] == g["grade"] and shown["text"] == g["grade_en"]


def test_the_township_table_has_the_api_grade_of_every_village(page: Any, live: Live) -> None:
    ans = live.get("/api/v1/moisture", region=ZX, group_by="village")
    by = {g["key"]: g for g in ans["groups"]}
    open_page(page, live, f"/r/{ZX}")
    rows = page.eval_on_selector_all("#village-table tbody tr", "rows => rows.map(r => r.dataset.code)")
    assert rows and sum(1 for code in rows if by[code]["grade"]) >= 10
    for code in rows:
        shown = chip(page, f'#village-table tbody tr[data-code="{code}"] [data-field="moisture"]')
        assert shown["value"] == by[code]["grade"], code
        if by[code]["grade"]:
            assert shown["text"] == by[code]["grade"]
        else:
            assert shown["text"] in ("冻土", "数据异常", "无墒情数据")
    total = chip(page, '#village-table tfoot [data-field="moisture"]')
    assert total["value"] == ans["total"]["grade"]


def test_the_district_distribution_counts_the_api_stations(page: Any, live: Live) -> None:
    ans = live.get("/api/v1/moisture", region=DISTRICT, group_by="township")
    open_page(page, live, "/")
    counts = page.eval_on_selector_all("#moisture-counts [data-grade]",
                                       "els => Object.fromEntries(els.map(e => [e.dataset.grade, +e.dataset.value]))")
    total = ans["total"]
    assert {g: counts[g] for g in GRADES} == {g: total["stations"].get(g, 0) for g in GRADES}
    assert counts["frozen"] == total["frozen"] and counts["none"] == total["missing"] + total["anomalous"]
    assert sum(counts[g] for g in GRADES) > 0
    assert_charts_drawn(page, "#chart-moisture", 1)
    series = page.evaluate("() => echarts.getInstanceByDom(document.getElementById('chart-moisture'))"
                           ".getOption().series.map(s => s.data)")
    for i, g in enumerate(GRADES):
        assert series[i] == [grp["stations"].get(g, 0) for grp in ans["groups"]], g
    screenshot(page, "district-moisture")
