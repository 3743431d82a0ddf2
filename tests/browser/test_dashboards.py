"""The dashboards in a real browser: every tier opens with seeded data, its charts are drawn, the
numbers shown equal the REST API's answers, and a harvest entered on a village page reaches the
township page. Each test saves a 390-px-wide screenshot into tests/browser/screenshots/."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from service.times import DAY_MS, window_start
from tests.browser.conftest import Live, assert_charts_drawn, open_page, screenshot, wait_js
from tests.browser.seed import LOW_BATTERY, OFFLINE, UNREPORTED

pytestmark = pytest.mark.browser

DISTRICT, ZX = "211204", "211204101"  # 清河区, 张相镇
DMT = "211204101200"  # 大孟屯村


def iso(ms: int) -> str:
    """The browser's Date.toISOString(), which the pages send as start and end."""
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def values(tab: Any, selector: str) -> dict[str, str | None]:
    """``data-field`` → ``data-value`` (the API's raw number kept beside what is shown)."""
    found: dict[str, str | None] = tab.eval_on_selector_all(
        f"{selector} [data-field]",
        "els => Object.fromEntries(els.map(e => [e.dataset.field, e.dataset.value ?? null]))")
    return found


def field_error(tab: Any, name: str) -> str:
    """The harvest form's error shown for ``name`` ("" for the form as a whole), once it is shown."""
    slot = tab.locator(f'#harvest-form [data-error-for="{name}"]')
    slot.wait_for(state="visible")
    return slot.text_content() or ""


def assert_metric_charts(tab: Any, count: int) -> None:
    """Every metric chart is drawn, except a dry spell's rainfall, which says 无降雨 instead of an empty axis."""
    empty = tab.eval_on_selector_all(".chart[data-metric]", "els => Object.fromEntries(els.filter((e) => "
                                     "e.dataset.empty).map((e) => [e.dataset.metric, e.dataset.empty]))")
    assert set(empty) <= {"rainfall"} and set(empty.values()) <= {"无降雨"}, empty
    drawn = ".chart[data-metric]" + "".join(f':not([data-metric="{m}"])' for m in empty)
    assert_charts_drawn(tab, drawn, count - len(empty))


def short_zh(value: float) -> str:
    """The Chinese short form numbers.js writes: 亿 from 10⁸, 万 from 10⁴, two decimals; separators below."""
    for at, suffix in ((1e8, "亿"), (1e4, "万")):
        if abs(value) >= at:
            return f"{value / at:,.2f}{suffix}"
    return f"{value:,.0f}"


def num(text: str | None) -> float:
    assert text is not None
    return float(text)


def test_district_cards_equal_the_api(page: Any, live: Live) -> None:
    now, year, tz = live.seeded.now, live.seeded.year, live.ctx.settings.tz
    open_page(page, live, "/")
    yields_now = live.get("/api/v1/yields", region=DISTRICT, year=year, group_by="township")
    yields_before = live.get("/api/v1/yields", region=DISTRICT, year=year - 1, group_by="township")
    by_village = live.get("/api/v1/yields", region=DISTRICT, year=year, group_by="village")
    devices = live.get("/api/v1/devices", region=DISTRICT)["devices"]
    alerts = live.get("/api/v1/alerts", region=DISTRICT, active="true")["alerts"]
    today = dict(region=DISTRICT, start=iso(window_start(now, DAY_MS, tz)), end=iso(now), every="1d", agg="mean",
                 group_by="township")
    soil_answer = live.get("/api/v1/readings", metric="soil_moisture", **today)
    soil = {s["key"]: s["points"][-1][1] for s in soil_answer["series"]}
    rain = live.get("/api/v1/readings", region=DISTRICT, metric="rainfall", start=iso(now - DAY_MS), end=iso(now),
                    every="1h", agg="sum", group_by="device")["series"]
    village_of = {d["id"]: d["village"] for d in devices}

    towns = [t.code for t in live.ctx.tree.district.children]
    assert page.locator(".card[data-ready]").count() == len(towns) == 5
    for code in towns:
        shown = values(page, f"#card-{code}")
        group = next(g for g in yields_now["groups"] if g["key"] == code)
        before = next(g for g in yields_before["groups"] if g["key"] == code)
        assert num(shown["yield"]) == group["yield"]
        assert num(shown["yield_per_area"]) == group["yield_per_area"]
        assert num(shown["yield_yoy"]) == pytest.approx((group["yield"] - before["yield"]) / before["yield"])
        mine = [d for d in devices if d["village"].startswith(code)]
        assert shown["devices"] == f"{sum(d['online'] for d in mine)}/{len(mine)}"
        assert num(shown["soil_moisture"]) == soil[code]
        assert num(shown["alerts"]) == sum(a["region"].startswith(code) for a in alerts)
        station_rain = [sum(v for _, v in s["points"]) for s in rain if village_of[s["key"]].startswith(code)]
        assert num(shown["rain_24h"]) == pytest.approx(sum(station_rain) / len(station_rain), rel=1e-12)
        # coverage over the villages that hold farmland (registered plots), never the urban communities
        farming = {p.village for p in live.ctx.land if p.village.startswith(code)}
        reporting = sum(1 for g in by_village["groups"] if g["key"] in farming and g["records"] > 0)
        offline = sum(1 for d in mine if d["kind"] == "station" and not d["online"])
        assert shown["coverage"] == f"{reporting}/{len(farming)}/{offline}"
    # what a person reads: 万/亿 with two decimals (the exact 斤 on hover), and the coverage sentence
    zx = next(g for g in yields_now["groups"] if g["key"] == ZX)
    assert page.text_content(f"#card-{ZX} [data-field=yield]") == short_zh(zx["yield"])
    assert page.text_content(f"#card-{ZX} [data-field=yield] + .unit") == "斤"
    assert page.get_attribute(f"#card-{ZX} [data-field=yield]", "title") == f"{zx['yield']:,.0f}斤"
    assert page.text_content(f"#card-{ZX} [data-field=coverage]") == "12/13 村上报，1 站离线"
    totals = values(page, "#totals")
    assert num(totals["yield"]) == yields_now["total"]["yield"]
    assert num(totals["area"]) == yields_now["total"]["area"]
    assert_charts_drawn(page, ".chart", 2)  # the townships compared, 墒情 grades
    screenshot(page, "district")


def test_english_switch_is_remembered(page: Any, live: Live) -> None:
    open_page(page, live, "/")
    assert page.text_content("h1") == "清河区"
    page.click("#lang-switch")
    wait_js(page, "document.body.dataset.loaded")
    assert page.text_content("h1") == "Qinghe District"
    assert "villages reporting" in (page.text_content(f"#card-{ZX} [data-field=coverage]") or "")
    open_page(page, live, f"/r/{ZX}")  # the cookie carries the choice to the next page
    assert page.text_content("h1") == "Zhangxiang Town"
    screenshot(page, "township-en")


def test_township_page_tables_and_charts(page: Any, live: Live) -> None:
    open_page(page, live, f"/r/{ZX}")
    groups = {g["key"]: g for g in live.get("/api/v1/yields", region=ZX, year=live.seeded.year,
                                              group_by="village")["groups"]}
    rows = page.eval_on_selector_all("#village-table tbody tr", "rows => rows.map(r => r.dataset.code)")
    assert rows == [v.code for v in live.ctx.tree.get(ZX).children]
    for code in rows:
        shown = values(page, f'#village-table tbody tr[data-code="{code}"]')
        assert num(shown["yield"]) == groups[code]["yield"]
        assert num(shown["area"]) == groups[code]["area"]
        if groups[code]["yield_per_area"] is not None:
            assert num(shown["yield_per_area"]) == groups[code]["yield_per_area"]
    devices = live.get("/api/v1/devices", region=ZX)["devices"]
    offline = sorted(d["id"] for d in devices if d["kind"] == "station" and not d["online"])
    assert offline == [d for d in OFFLINE if d.startswith("qh-st-101")]
    listed = page.eval_on_selector_all("#offline-table tbody tr[data-device]", "rs => rs.map(r => r.dataset.device)")
    assert sorted(listed) == offline
    lagging = page.eval_on_selector_all("#lagging li[data-code]", "ls => ls.map(l => l.dataset.code)")
    assert lagging[0] in UNREPORTED  # no harvest reported yet: furthest behind its target
    assert_charts_drawn(page, ".chart", 4)
    screenshot(page, "township")


def test_village_page_harvest_form(page: Any, live: Live) -> None:
    year = live.seeded.year
    open_page(page, live, f"/r/{DMT}")
    metrics = page.eval_on_selector_all(".chart[data-metric]", "els => els.map(e => e.dataset.metric)")
    assert {"soil_moisture", "air_temp", "rainfall"} <= set(metrics)
    assert_metric_charts(page, len(metrics))
    devices = {d["id"]: d for d in live.get("/api/v1/devices", region=DMT)["devices"]}
    for dev_id, dev in devices.items():
        assert values(page, f'#station-table tr[data-device="{dev_id}"]')["status"] == (
            "online" if dev["online"] else "offline")
    page.click('#range button[data-range="7d"]')
    wait_js(page, "[...document.querySelectorAll('.chart[data-metric]')].every(e => e.dataset.range === '7d')")
    assert_metric_charts(page, len(metrics))

    before = live.get("/api/v1/yields", region=ZX, year=year, group_by="village")
    before_dmt = next(g for g in before["groups"] if g["key"] == DMT)
    # a bad area: the page's own Chinese text next to the area field, nothing sent, nothing stored
    page.fill("#harvest-form [name=area_mu]", "-5")
    page.fill("#harvest-form [name=yield_jin]", "6000")
    page.click("#harvest-form button[type=submit]")
    assert field_error(page, "area_mu") == "请填写大于 0 的面积（亩）"
    assert page.locator(".field-error:visible").count() == 1
    assert page.get_attribute("#harvest-form [name=area_mu]", "aria-invalid") == "true"
    screenshot(page, "village-form-error")
    # issue 18: 玉米 1 亩, 900,000 斤 — warned while typing, refused next to 产量, in Chinese
    page.select_option("#harvest-form [name=crop]", "corn")
    page.fill("#harvest-form [name=area_mu]", "1")
    page.fill("#harvest-form [name=yield_jin]", "900000")
    assert page.get_attribute("#harvest-per-mu", "data-plausible") == "false"
    page.click("#harvest-form button[type=submit]")
    implausible = "单产 900,000 斤/亩，超出玉米的合理范围 300–2,500 斤/亩，请核对产量和面积"
    assert field_error(page, "yield_jin") == implausible
    assert page.get_attribute("#harvest-form [name=yield_jin]", "aria-invalid") == "true"
    screenshot(page, "village-form-implausible")
    # the server's refusal (a page whose range is off), rendered from its code and field
    page.eval_on_selector('#harvest-form option[value="corn"]', "o => { o.dataset.max = '1e9'; }")
    page.click("#harvest-form button[type=submit]")
    wait_js(page, "!document.querySelector('#harvest-form button[type=submit]').disabled")
    assert field_error(page, "yield_jin") == "单产超出该作物的合理范围，请核对产量和面积"
    page.eval_on_selector('#harvest-form option[value="corn"]', "o => { o.dataset.max = '2500'; }")
    # an unknown plot: the API's unknown_plot next to the plot field
    page.fill("#harvest-form [name=yield_jin]", "1200")
    page.fill("#harvest-form [name=plot]", "P-nowhere")
    page.click("#harvest-form button[type=submit]")
    assert field_error(page, "plot") == "地块 P-nowhere 未登记，请从列表中选择"
    assert "area_ha" not in page.text_content("#harvest-form") and "yield_kg" not in page.text_content("#harvest-form")
    after_bad = live.get("/api/v1/yields", region=DMT, year=year)
    assert after_bad["total"]["records"] == before_dmt["records"]
    # a good one, at a time typed in: accepted with its 单产, the form clears to a new ticket at "now"
    tz = live.ctx.settings.tz
    typed_ts = datetime.fromtimestamp((live.seeded.now - 3_600_000) / 1000, tz).strftime("%Y-%m-%dT%H:%M")
    page.fill("#harvest-form [name=ts]", typed_ts)
    page.fill("#harvest-form [name=area_mu]", "12.5")
    page.fill("#harvest-form [name=yield_jin]", "15000")
    plot = live.ctx.land.in_village(DMT)[-1].id  # a registered plot: the form offers them (an unknown one is refused)
    assert page.locator(f'#plot-list option[value="{plot}"]').count() == 1
    page.fill("#harvest-form [name=plot]", plot)
    page.click("#harvest-form button[type=submit]")
    page.locator("#harvest-ok").wait_for(state="visible")
    assert page.locator(".field-error:visible").count() == 0
    saved = page.text_content("#harvest-ok") or ""
    assert saved.startswith("已保存：玉米 12.50 亩，15,000 斤，单产 1,200 斤/亩"), saved
    now_local = datetime.fromtimestamp(live.seeded.now / 1000, tz).strftime("%Y-%m-%dT%H:%M")
    form = page.eval_on_selector("#harvest-form", "f => Object.fromEntries([...new FormData(f)])")
    assert {k: form[k] for k in ("ts", "area_mu", "yield_jin", "plot")} == {
        "ts": now_local, "area_mu": "", "yield_jin": "", "plot": ""}
    assert page.locator("#harvest-per-mu").is_hidden()
    record_id = page.get_attribute("#harvest-ok", "data-id")
    assert record_id and record_id in saved
    # the same ticket typed again: refused as a duplicate naming the record it repeats (issue 18)
    for name, value in (("ts", typed_ts), ("area_mu", "12.5"), ("yield_jin", "15000"), ("plot", plot)):
        page.fill(f"#harvest-form [name={name}]", value)
    page.click("#harvest-form button[type=submit]")
    assert field_error(page, "") == f"与已有记录 {record_id} 重复"
    assert page.locator("#harvest-ok").is_hidden()
    wait_js(page, f"document.querySelector('#totals [data-field=records]').dataset.value === "
                           f"'{before_dmt['records'] + 1}'")
    assert page.locator("#records-table td", has_text=plot).count() == 1
    after = live.get("/api/v1/yields", region=ZX, year=year, group_by="village")
    after_dmt = next(g for g in after["groups"] if g["key"] == DMT)
    assert after_dmt["yield"] == pytest.approx(before_dmt["yield"] + 15000)
    assert num(values(page, "#totals")["yield"]) == after_dmt["yield"]
    screenshot(page, "village")

    open_page(page, live, f"/r/{ZX}")
    row = values(page, f'#village-table tbody tr[data-code="{DMT}"]')
    assert num(row["yield"]) == after_dmt["yield"]
    assert num(values(page, "#village-table tfoot")["yield"]) == after["total"]["yield"]


def test_harvest_form_in_english(page: Any, live: Live) -> None:
    """?lang=en: the same checks in English, never the API's field names of the units the form lacks."""
    year = live.seeded.year
    open_page(page, live, f"/r/{DMT}?lang=en")
    before = live.get("/api/v1/yields", region=DMT, year=year)["total"]["records"]
    page.fill("#harvest-form [name=yield_jin]", "6000")
    page.click("#harvest-form button[type=submit]")
    assert field_error(page, "area_mu") == "Enter an area above 0 (亩)"
    page.select_option("#harvest-form [name=crop]", "soybean")
    page.fill("#harvest-form [name=area_mu]", "2")
    page.fill("#harvest-form [name=yield_jin]", "800")
    assert page.text_content("#harvest-per-mu") == "Yield per mu 400 斤/亩 (Soybean: 100–1,000)"
    page.fill("#harvest-form [name=yield_jin]", "2001")
    page.click("#harvest-form button[type=submit]")
    assert field_error(page, "yield_jin") == ("Yield per mu 1,000.5 斤/亩 is outside the plausible 100–1,000 斤/亩 "
                                              "for Soybean: check yield and area")
    assert page.locator(".field-error:visible").count() == 1
    screenshot(page, "village-form-implausible-en")
    assert live.get("/api/v1/yields", region=DMT, year=year)["total"]["records"] == before


def test_device_page(page: Any, live: Live) -> None:
    now = live.seeded.now
    dev = live.get(f"/api/v1/devices/{LOW_BATTERY}")
    open_page(page, live, f"/d/{LOW_BATTERY}")
    shown = values(page, "#device-facts")
    assert shown["status"] == ("online" if dev["online"] else "offline")
    assert shown["last_seen"] == dev["last_seen"]
    battery = live.get("/api/v1/readings", region=dev["village"], metric="battery", start=iso(now - DAY_MS),
                       end=iso(now), every="10m", agg="mean", group_by="device")
    mine = next(s for s in battery["series"] if s["key"] == LOW_BATTERY)
    assert num(shown["battery"]) == mine["points"][-1][1] == 3.3
    assert page.get_attribute("#device-facts [data-field=battery]", "class") == "warn"
    assert_metric_charts(page, len(dev["metrics"]))
    screenshot(page, "device")

    open_page(page, live, f"/d/{OFFLINE[0]}")
    assert values(page, "#device-facts")["status"] == "offline"


def test_district_area_group_card_shows_the_demo_zone_against_the_rest(page: Any, live: Live) -> None:
    year = live.seeded.year
    open_page(page, live, "/")
    wait_js(page, "document.querySelector('#area-groups').dataset.ready")
    now = live.get("/api/v1/yields", region=DISTRICT, year=year, group_by="area_group")
    before = live.get("/api/v1/yields", region=DISTRICT, year=year - 1, group_by="area_group")
    rows = page.eval_on_selector_all("#area-group-table tbody tr", "trs => trs.map(t => t.dataset.key)")
    assert rows == [g["key"] for g in now["groups"] if g["records"] or g["key"] == ""]
    assert "kendi-demo" in rows and rows[-1] == ""
    for key in rows:
        shown = values(page, f'#area-group-table tr[data-key="{key}"]')
        g = next(x for x in now["groups"] if x["key"] == key)
        b = next(x for x in before["groups"] if x["key"] == key)
        assert num(shown["yield_per_area"]) == g["yield_per_area"]
        assert num(shown["area"]) == g["area"]
        if b["yield_per_area"]:
            assert num(shown["yoy"]) == pytest.approx(g["yield_per_area"] / b["yield_per_area"] - 1)
        else:  # a group first harvested this season: no 同比, a dash rather than +∞ or 0
            assert shown["yoy"] is None, (key, shown)
    demo = next(g for g in now["groups"] if g["key"] == "kendi-demo")
    other = next(g for g in now["groups"] if g["key"] == "")
    gain = num(values(page, "#area-groups")["demo-gain"])
    assert gain == pytest.approx(demo["yield_per_area"] / other["yield_per_area"] - 1)
    assert 0.08 <= gain <= 0.14
    text = page.text_content("#area-groups [data-field=demo-gain]") or ""
    assert text.startswith("垦地共建示范区单产比其他高 +") and page.text_content(
        '#area-group-table tr[data-key=""] th') == "其他"
    screenshot(page, "district-area-groups")
