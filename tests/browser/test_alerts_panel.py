"""The alerts panel and the error pages in Debian's chromium (issue 19), logins on, at 390 px and
1280 px, in Chinese and English: a township editor acknowledges an alert on the township page; after a
reload it shows as acknowledged and ``GET /api/v1/alerts`` agrees; a village editor opening another
township gets a Chinese 403 page in the site's frame whose link leads back to its own village."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from service.auth import open_accounts
from service.context import build
from service.settings import load
from service.store.base import Alert
from service.store.sqlite import SqliteStore
from service.times import now_ms
from service.web import create_app
from tests.access_support import login
from tests.brokers import free_port
from tests.browser.conftest import REPO, Live, require_echarts, screenshot, serving, wait_js
from tests.browser.seed import seed

pytestmark = pytest.mark.browser

ZX, YML = "211204101", "211204102"  # 张相镇, 杨木林子镇
V_DMT = "211204101200"  # 大孟屯村 (张相镇)
PASSWORD = "correct horse battery staple"
EDITOR, VILLAGE_EDITOR, ADMIN = "zx-clerk", "dmt-clerk", "district-head"
WIDTHS = {"phone": {"width": 390, "height": 844}, "desk": {"width": 1280, "height": 900}}
ZX_VILLAGES = ("211204101200", "211204101202", "211204101203", "211204101204", "211204101205")


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """The app with logins required, the dashboards' seed, three accounts and an open alert per
    张相镇 village (one of them a station's low battery)."""
    require_echarts()
    folder = tmp_path_factory.mktemp("alerts-panel")
    settings = load(REPO / "config", env={}, overrides={"store.data_dir": str(folder / "data"),
                                                          "mqtt.url": f"mqtt://127.0.0.1:{free_port()}",
                                                          "web.auth": "required"})
    ctx = build(settings)
    store = SqliteStore(folder / "store.sqlite3")
    seeded = seed(ctx, store)
    for i, village in enumerate(ZX_VILLAGES):
        began = seeded.now - (i + 2) * 3_600_000
        if i == 0:
            device = f"qh-st-{village[6:12]}-1"
            made = store.open_alert(Alert(f"battery_low:{device}", "battery_low", "warning", village, device,
                                          f"{device} 电池电压 3.21 V，低于 3.4 V", began, value=3.21, threshold=3.4))
        else:
            made = store.open_alert(Alert(f"drought:{village}", "drought", "warning", village, None,
                                          "土壤含水量 12.5% 已连续 48 小时低于 15%", began, value=12.5, threshold=15.0))
        assert made is not None
    accounts = open_accounts(settings.data_dir, ctx.tree)
    for name, role, scope in ((EDITOR, "editor", ZX), (VILLAGE_EDITOR, "editor", V_DMT), (ADMIN, "admin", "211204")):
        accounts.add(name, PASSWORD, role, scope, now_ms())
    app = create_app(ctx, store)
    api = app.test_client()
    assert login(api, ADMIN).status_code == 302
    with serving(app, api, ctx, store, seeded) as found:
        yield found


@pytest.fixture
def tab_at(browser: Any, live: Live) -> Iterator[Any]:
    """``tab_at(width)``: a logged-out tab of that size, clock pinned at the seed; JS errors fail the test."""
    contexts: list[Any] = []
    errors: list[str] = []

    def make(width: str) -> Any:
        context = browser.new_context(viewport=WIDTHS[width], locale="zh-CN", timezone_id="America/Los_Angeles")
        contexts.append(context)
        tab = context.new_page()
        tab.on("pageerror", lambda exc: errors.append(str(exc)))
        tab.on("console", lambda msg: errors.append(msg.text) if "Content Security Policy" in msg.text else None)
        tab.clock.set_fixed_time(datetime.fromtimestamp(live.seeded.now / 1000, UTC))
        return tab

    yield make
    for context in contexts:
        context.close()
    assert not errors, f"JavaScript errors: {errors}"


def log_in(tab: Any, live: Live, username: str, then: str) -> None:
    tab.goto(f"{live.base}/login?next={then}")
    tab.fill('input[name="username"]', username)
    tab.fill('input[name="password"]', PASSWORD)
    with tab.expect_navigation():
        tab.click('#login-form button[type="submit"]')


def panel_ready(tab: Any, at_least: int = 1) -> None:
    wait_js(tab, f"(+document.getElementById('alerts').dataset.ready || 0) >= {at_least}")


def rows(tab: Any) -> list[dict[str, str]]:
    found: list[dict[str, str]] = tab.eval_on_selector_all("#alerts-table tbody tr[data-alert]", """
      trs => trs.map(t => ({
        id: t.dataset.alert, state: t.dataset.state, kind: t.children[0].textContent,
        place: t.children[1].textContent, since: t.children[2].textContent, value: t.children[3].textContent,
        text: t.children[4].textContent, button: t.querySelector('button.ack') ? 'yes' : ''}))""")
    return found


def api_alerts(live: Live) -> dict[str, dict[str, Any]]:
    return {a["id"]: a for a in live.get("/api/v1/alerts", region=ZX, active="true")["alerts"]}


@pytest.mark.parametrize("lang", ["zh", "en"])
@pytest.mark.parametrize("width", ["phone", "desk"])
def test_an_editor_acknowledges_an_alert_on_the_township_page(tab_at: Any, live: Live, width: str, lang: str) -> None:
    tab = tab_at(width)
    path = f"/r/{ZX}?lang={lang}"
    log_in(tab, live, EDITOR, path)
    panel_ready(tab)
    listed = api_alerts(live)
    shown = rows(tab)
    assert [r["id"] for r in shown] == sorted(listed, key=lambda i: listed[i]["since"], reverse=True)
    assert {r["id"] for r in shown} == set(listed)  # exactly the alerts the API lists
    battery = next(r for r in shown if listed[r["id"]]["kind"] == "battery_low")
    if lang == "zh":
        assert battery["kind"] == "电池电压低" and "大孟屯村" in battery["place"] and "3.21 V" in battery["value"]
        assert "（阈值 3.40）" in battery["value"]
    else:
        assert battery["kind"] == "Low battery" and "(threshold 3.40)" in battery["value"]
    open_rows = [r for r in shown if r["state"] == "open"]
    assert open_rows and all(r["button"] for r in open_rows)
    target = open_rows[0]["id"]
    tab.click(f'#alerts-table tr[data-alert="{target}"] button.ack')
    wait_js(tab, f"document.querySelector('#alerts-table tr[data-alert=\"{target}\"]').dataset.state === 'acked'")
    screenshot(tab, f"alerts-panel-{width}-{lang}")

    tab.reload()
    panel_ready(tab)
    [after] = [r for r in rows(tab) if r["id"] == target]
    assert after["state"] == "acked" and not after["button"]
    assert EDITOR in after["text"]
    assert after["text"].startswith("已确认" if lang == "zh" else "Acknowledged by")
    stored = api_alerts(live)[target]
    assert (stored["acked_by"], stored["active"]) == (EDITOR, True) and stored["acked_at"] is not None
    assert stored["since"] == listed[target]["since"]  # when it began, not when it was acknowledged


@pytest.mark.parametrize("width", ["phone", "desk"])
def test_a_403_page_is_chinese_with_a_link_back(tab_at: Any, live: Live, width: str) -> None:
    tab = tab_at(width)
    log_in(tab, live, VILLAGE_EDITOR, f"/r/{V_DMT}")
    resp = tab.goto(f"{live.base}/r/{YML}")
    assert resp is not None and resp.status == 403
    assert tab.evaluate("document.documentElement.lang") == "zh-CN"
    assert tab.text_content("header.top .brand").startswith("农云")  # the site's frame
    assert tab.text_content("#title").startswith("无权访问")
    assert "管辖范围" in tab.text_content("#error-page")
    screenshot(tab, f"error-403-{width}")
    with tab.expect_navigation():
        tab.click("#error-back")
    assert tab.url.endswith(f"/r/{V_DMT}")
    panel_ready(tab)  # its own village page, with the panel (and no acknowledge outside its village)
    assert all(r["place"].startswith("大孟屯村") for r in rows(tab))
