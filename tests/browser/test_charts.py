"""Charts that say what they show, and numbers formatted for their readers, read from the live pages:
the ECharts instances' own options and pixels, and the text and titles a clerk sees (issue 19)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from service.times import DAY_MS
from tests.browser.conftest import Live, open_page, screenshot, wait_js
from tests.browser.seed import LOW_BATTERY

pytestmark = pytest.mark.browser


def iso(ms: int) -> str:
    """The browser's Date.toISOString(), which the pages send as start and end."""
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")

DISTRICT, ZX = "211204", "211204101"  # 清河区, 张相镇

YIELD_CHART = """() => {
  const el = document.getElementById('chart-yield');
  const c = echarts.getInstanceByDom(el);
  const o = c.getOption();
  const line = o.series.find((s) => s.type === 'line');
  const target = line.markLine && line.markLine.data.length ? line.markLine.data[0].yAxis : null;
  const grid = c.getModel().getComponent('grid').coordinateSystem.getRect();
  return { bar_min: o.yAxis[0].min, per_mu_min: o.yAxis[1].min, per_mu_max: o.yAxis[1].max, target,
           target_y: target === null ? null : c.convertToPixel({ yAxisIndex: 1 }, target),
           grid_top: grid.y, grid_bottom: grid.y + grid.height, names: o.series.map((s) => s.name),
           per_mu: line.data };
}"""

LEGEND = """(id) => {
  const c = echarts.getInstanceByDom(document.getElementById(id));
  const o = c.getOption();
  const selected = (o.legend && o.legend[0] && o.legend[0].selected) || {};
  return { series: o.series.length, drawn: o.series.filter((s) => selected[s.name] !== false).length,
           note: (document.getElementById(id).parentElement.querySelector('.chart-note') || {}).textContent || '' };
}"""


def test_township_per_mu_chart_draws_its_target_inside_an_axis_from_zero(page: Any, live: Live) -> None:
    open_page(page, live, f"/r/{ZX}")
    target = live.ctx.targets.get(ZX)
    assert target is not None and target.as_json()["yield_per_area"]
    per_mu_target = round(target.as_json()["yield_per_area"] or 0)
    chart = page.evaluate(YIELD_CHART)
    assert chart["target"] == per_mu_target
    assert chart["bar_min"] == 0 and chart["per_mu_min"] == 0  # 1,063 vs 1,128 looks as close as it is
    assert chart["per_mu_max"] >= max(per_mu_target, *[v for v in chart["per_mu"] if v is not None])
    # the dashed line lies inside the plotting area, where ECharts draws it (not clipped above the axis)
    assert chart["grid_top"] <= chart["target_y"] <= chart["grid_bottom"], chart
    assert chart["names"] == ["产量（万斤）", "亩产（斤/亩）"]
    screenshot(page, "township-yield-chart")


def test_township_line_panels_show_at_most_eight_lines_and_say_so(page: Any, live: Live) -> None:
    open_page(page, live, f"/r/{ZX}")
    for chart_id in ("chart-soil", "chart-temp"):
        legend = page.evaluate(LEGEND, chart_id)
        assert legend["series"] > 8, legend  # 张相镇 has 13 villages with stations: the rest wait in the legend
        assert legend["drawn"] == 8, legend
        assert legend["note"] == f"显示平均值最高的 8 条曲线（共 {legend['series']} 条），点击图例可显示其他"
    # a line the reader adds from the legend stays drawn when the panel is redrawn (the 60-s refresh)
    kept = page.evaluate("""() => {
      const el = document.getElementById('chart-soil');
      const c = echarts.getInstanceByDom(el);
      const o = c.getOption();
      const hidden = o.series.map((s) => s.name).find((n) => o.legend[0].selected[n] === false);
      c.dispatchAction({ type: 'legendSelect', name: hidden });
      const series = o.series.map((s) => ({ key: s.name, name: s.name,
        points: s.data.map(([t, v]) => [new Date(t).toISOString(), v]) }));
      NY.lineChart(el, series, { unit: '%', metric: 'soil_moisture' });
      return { hidden, now: echarts.getInstanceByDom(el).getOption().legend[0].selected[hidden] };
    }""")
    assert kept["hidden"] and kept["now"] is True, kept
    assert page.evaluate(LEGEND, "chart-soil")["drawn"] == 9


def test_township_rain_chart_shows_days_from_zero(page: Any, live: Live) -> None:
    open_page(page, live, f"/r/{ZX}")
    assert page.text_content("figure:has(#chart-rain) figcaption") == "降雨量（近7天，逐日，各站平均）"
    rain = page.evaluate("""() => {
      const el = document.getElementById('chart-rain');
      const o = echarts.getInstanceByDom(el).getOption();
      return { empty: el.dataset.empty || null, days: o.xAxis ? o.xAxis[0].data : [],
               min: o.yAxis ? o.yAxis[0].min : null, title: o.title && o.title[0] ? o.title[0].text : null };
    }""")
    if rain["empty"]:  # a dry week says so in words
        assert rain["title"] in ("无降雨", "暂无数据")
    else:
        assert len(rain["days"]) == 7 and all(len(d) == 5 and d[2] == "-" for d in rain["days"]), rain
        assert rain["min"] == 0


def test_a_dry_series_says_no_rain_instead_of_an_empty_axis(page: Any, live: Live) -> None:
    """The real NY.lineChart on the page, fed a week of zero rainfall, and then nothing at all."""
    open_page(page, live, f"/r/{ZX}")
    said = page.evaluate("""() => {
      const el = document.createElement('div');
      el.className = 'chart';
      el.style.width = '300px'; el.style.height = '200px';
      document.querySelector('main').append(el);
      const t = new Date(Date.now() - 3600e3).toISOString();
      NY.lineChart(el, [{ key: 'a', points: [[t, 0], [t, 0]] }], { bars: true, emptyText: NY.T.no_rain });
      const dry = echarts.getInstanceByDom(el).getOption().title[0].text;
      NY.lineChart(el, [{ key: 'a', points: [] }], { bars: true, emptyText: NY.T.no_rain });
      const none = echarts.getInstanceByDom(el).getOption().title[0].text;
      NY.lineChart(el, [{ key: 'a', points: [[t, 0.4]] }], { bars: true, emptyText: NY.T.no_rain });
      const wet = echarts.getInstanceByDom(el).getOption();
      return { dry, none, wet_min: wet.yAxis[0].min, wet_scale: wet.yAxis[0].scale };
    }""")
    assert said == {"dry": "无降雨", "none": "暂无数据", "wet_min": 0, "wet_scale": False}


def test_district_totals_read_yi_and_wan_with_the_exact_figure_on_hover(page: Any, live: Live) -> None:
    open_page(page, live, "/")
    total = live.get("/api/v1/yields", region=DISTRICT, year=live.seeded.year, group_by="township")["total"]
    assert total["yield"] >= 1e8 and 1e4 <= total["area"] < 1e8  # the demo district: 亿斤 of grain on 万亩
    shown = page.text_content("#totals [data-field=yield]") or ""
    assert shown == f"{total['yield'] / 1e8:,.2f}亿"
    assert page.text_content("#totals [data-field=yield] + .unit") == "斤"
    assert page.get_attribute("#totals [data-field=yield]", "title") == f"{total['yield']:,.0f}斤"
    assert float(page.get_attribute("#totals [data-field=yield]", "data-value") or "nan") == total["yield"]
    assert page.text_content("#totals [data-field=area]") == f"{total['area'] / 1e4:,.2f}万"
    assert page.get_attribute("#totals [data-field=area]", "title") == f"{total['area']:,.1f}亩"
    assert page.text_content("#totals [data-field=records]") == f"{total['records']:,}"
    bars = page.evaluate("() => echarts.getInstanceByDom(document.getElementById('chart-townships')).getOption()"
                         ".yAxis.map((a) => [a.min, a.name])")
    assert bars == [[0, "万斤"]]
    screenshot(page, "district-totals")


def test_english_mode_says_jin_and_mu_without_full_width_brackets(page: Any, live: Live) -> None:
    open_page(page, live, "/?lang=en")
    total = live.get("/api/v1/yields", region=DISTRICT, year=live.seeded.year, group_by="township")["total"]
    assert page.text_content("#totals [data-field=yield]") == f"{total['yield'] / 1e6:,.2f} million"
    assert page.text_content("#totals [data-field=yield] + .unit") == "jin"
    assert page.text_content("#totals [data-field=area] + .unit") == "mu"
    assert page.text_content("#totals [data-field=yield_per_area] + .unit") == "jin/mu"
    assert page.get_attribute("#totals [data-field=yield]", "title") == f"{total['yield']:,.0f} jin"
    assert page.text_content(f"#card-{ZX} [data-field=yield] + .unit") == "jin"
    shown = " ".join(page.eval_on_selector_all("#totals, #cards, main h2, #area-group-table thead",
                                               "els => els.map((e) => e.textContent)"))
    assert "万斤" not in shown and "斤" not in shown and "亩" not in shown and "（" not in shown, shown
    open_page(page, live, f"/r/{ZX}?lang=en")
    heads = page.eval_on_selector_all("#village-table thead th", "ths => ths.map((t) => t.textContent)")
    assert "Output (jin)" in heads and "Area (mu)" in heads and "Yield per mu (jin/mu)" in heads
    names = page.evaluate("() => echarts.getInstanceByDom(document.getElementById('chart-yield')).getOption()"
                          ".series.map((s) => s.name)")
    assert names == ["Output (million jin)", "Yield per mu (jin/mu)"]
    screenshot(page, "township-en-numbers")


def test_device_page_battery_two_decimals_and_light_without_decimals(page: Any, live: Live) -> None:
    open_page(page, live, f"/d/{LOW_BATTERY}")
    assert page.text_content("#device-facts [data-field=battery]") == "3.30 V"
    rows = page.eval_on_selector_all("#latest-table tbody tr", "trs => Object.fromEntries(trs.map((r) => "
                                     "[r.dataset.metric, r.querySelector('[data-field=value]').textContent]))")
    assert rows["battery"] == "3.30 V"
    if "light" in rows and rows["light"] != "—":
        assert rows["light"].endswith(" lux") and "." not in rows["light"], rows
    if "soil_ec" in rows and rows["soil_ec"] != "—":
        assert len(rows["soil_ec"].split(" ")[0].split(".")[1]) == 2, rows
    # the last 24 h of rain, as the API answers it: a dry day says 无降雨 on bars from zero, a wet one draws them
    now = live.seeded.now
    dev = live.get(f"/api/v1/devices/{LOW_BATTERY}")
    rain = live.get("/api/v1/readings", region=dev["village"], metric="rainfall", start=iso(now - DAY_MS),
                    end=iso(now), every="10m", agg="sum", group_by="device")
    mine = [p[1] for s in rain["series"] if s["key"] == LOW_BATTERY for p in s["points"]]
    chart = page.evaluate("""() => { const el = document.getElementById('chart-rainfall');
      const o = echarts.getInstanceByDom(el).getOption();
      return { empty: el.dataset.empty || null, min: o.yAxis && o.yAxis.length ? o.yAxis[0].min : null }; }""")
    if mine and not any(mine):
        assert chart["empty"] == "无降雨"
    elif any(mine):
        assert chart == {"empty": None, "min": 0}


def test_header_subtitle_never_breaks_inside_a_word_at_390px(page: Any, live: Live) -> None:
    for lang in ("zh", "en"):
        open_page(page, live, f"/?lang={lang}")
        wait_js(page, "document.querySelector('.brand small')")
        box = page.evaluate("""() => { const s = document.querySelector('.brand small');
          const r = document.createRange(); r.selectNodeContents(s);
          return { lines: r.getClientRects().length, right: s.getBoundingClientRect().right,
                   width: document.documentElement.clientWidth }; }""")
        assert box["lines"] == 1 and box["right"] <= box["width"], (lang, box)
