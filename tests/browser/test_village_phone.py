"""The village page on a phone (390 × 844) and a desk screen (1280 px), with a season's worth of
records: the entry form comes within the first two screens, the records come a page at a time, the
charts stand behind their metric picker, and the whole page stays a few screens tall."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from tests.browser.conftest import CHARTS_DRAWN, PHONE, Live, open_page, screenshot, wait_js

pytestmark = pytest.mark.browser

DMT = "211204101200"  # 大孟屯村
RECORDS = 120  # a busy village's season of weighing tickets
HOUR_MS = 3_600_000

LAYOUT = """() => {
  const top = (s) => {
    const e = document.querySelector(s);
    return e ? Math.round(e.getBoundingClientRect().top + scrollY) : null;
  };
  return { height: document.documentElement.scrollHeight, today: top('#today'), form: top('#harvest-form'),
    records: top('#records'), stations: top('#station-table'), plots: top('#plots'),
    charts: top('#metric-charts'),
    rows: document.querySelectorAll('#records-table tbody tr').length,
    shownCharts: [...document.querySelectorAll('#metric-charts figure')].filter((f) => {
      const r = f.getBoundingClientRect(), s = document.getElementById('metric-charts').getBoundingClientRect();
      return r.right > s.left + 1 && r.left < s.right - 1; }).length };
}"""


@pytest.fixture(scope="module")
def busy(live: Live) -> int:
    """Records entered through the API, an hour apart, so the page has far more rows than one page."""
    for i in range(RECORDS):
        ts = datetime.fromtimestamp((live.seeded.now - (i + 30) * HOUR_MS) / 1000, UTC).isoformat()
        resp = live.api.post("/api/v1/yields", json={"village": DMT, "ts": ts, "crop": "corn",
                                                     "area_mu": 10 + i % 7, "yield_jin": 11_000 + 37 * i})
        assert resp.status_code == 201, resp.get_data(as_text=True)
    count: int = len(live.get(f"/r/{DMT}/yield-records.json", year=live.seeded.year)["records"])
    assert count >= RECORDS
    return count


def test_on_a_phone_the_form_comes_first_and_the_page_is_a_few_screens(page: Any, live: Live, busy: int) -> None:
    open_page(page, live, f"/r/{DMT}")
    wait_js(page, "document.querySelectorAll('#records-table tbody tr').length > 0")
    got = page.evaluate(LAYOUT)
    print(f"\nvillage page at 390 px with {busy} records: {got}")
    # the order: today and totals, the form, the records, then stations, plots and charts
    assert got["today"] < got["form"] < got["records"] < got["stations"] < got["plots"] < got["charts"], got
    assert got["form"] <= 2 * PHONE["height"], got
    assert got["height"] < 9_000, got  # the issue measured 18,500 px
    assert got["rows"] == 20  # a page of records, not the season
    assert got["shownCharts"] == 1  # one metric at a time
    assert page.text_content("#records-page") == f"第 1/{-(-busy // 20)} 页，共 {busy:,} 条"
    screenshot(page, "village-phone")

    # the pager walks the season; the second page holds the next twenty records, newest first
    records = live.get(f"/r/{DMT}/yield-records.json", year=live.seeded.year)["records"]
    assert page.is_disabled("#records-prev")
    page.click("#records-next")
    ids = page.eval_on_selector_all("#records-table tbody tr", "trs => trs.map((t) => t.dataset.id)")
    assert ids == [r["id"] for r in records[20:40]]
    assert page.get_attribute("#records-pager", "data-page") == "2"
    page.click("#records-prev")
    assert page.get_attribute("#records-pager", "data-page") == "1"

    # every chart is drawn (the strip keeps their size); the picker brings another metric into view
    metrics = page.eval_on_selector_all(".chart[data-metric]", "els => els.map((e) => e.dataset.metric)")
    assert len(metrics) > 2
    drawn = {c["id"]: c for c in page.evaluate(CHARTS_DRAWN, ".chart[data-metric]")}
    sizes = page.eval_on_selector_all(".chart[data-metric]", "els => els.map((e) => [e.id, e.clientWidth, "
                                      "e.dataset.empty || ''])")
    for chart_id, width, empty in sizes:  # off-screen charts keep a phone's width and are painted too
        assert width > 300 and drawn[chart_id]["canvas"], (chart_id, width)
        assert empty or drawn[chart_id]["painted"] > 1000, drawn[chart_id]
    assert sum(1 for _, _, empty in sizes if not empty) >= 2
    target = metrics[2]
    page.click(f'#metric-pick a[data-metric="{target}"]')
    wait_js(page, f"document.getElementById('metric-charts').dataset.shown === '{target}'")
    box = page.evaluate(f"""() => {{
      const f = document.getElementById('fig-{target}').getBoundingClientRect();
      const s = document.getElementById('metric-charts').getBoundingClientRect();
      return {{ left: f.left - s.left, width: f.width, strip: s.width }}; }}""")
    assert abs(box["left"]) < 2 and abs(box["width"] - box["strip"]) < 2, box
    assert page.get_attribute(f'#metric-pick a[data-metric="{target}"]', "aria-current") == "true"


def test_on_a_desk_screen_the_form_stands_beside_the_records(page: Any, live: Live, busy: int) -> None:
    page.set_viewport_size({"width": 1280, "height": 900})
    open_page(page, live, f"/r/{DMT}")
    wait_js(page, "document.querySelectorAll('#records-table tbody tr').length > 0")
    got = page.evaluate(LAYOUT)
    print(f"\nvillage page at 1280 px with {busy} records: {got}")
    form = page.locator("#harvest-form").bounding_box()
    records = page.locator("#records").bounding_box()
    assert abs(form["y"] - records["y"]) < 2 and form["x"] + form["width"] <= records["x"], (form, records)
    assert got["rows"] == 50
    assert page.is_hidden("#metric-pick")  # every chart is in view: two by two
    assert got["shownCharts"] == len(page.query_selector_all("#metric-charts figure"))
    assert got["stations"] > got["records"]
    screenshot(page, "village-desk")
    open_page(page, live, f"/r/{DMT}?lang=en")
    wait_js(page, "document.querySelectorAll('#records-table tbody tr').length > 0")
    assert page.text_content("#records-page") == f"Page 1 of {-(-busy // 50)}, {busy:,} records"
    assert page.text_content("#records-next") == "Next ›"
