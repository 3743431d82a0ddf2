"""The admin pages in a real browser (web.auth = off: the operator is the district's admin): 停用 asks
first through the browser's own confirm dialog (confirm.js, no inline script under the CSP); dismissing
it sends nothing, accepting it disables; the pages lead back to the dashboards."""

from __future__ import annotations

from typing import Any

import pytest

from service.times import now_ms
from tests.browser.conftest import Live, screenshot

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery staple"


def test_disabling_an_account_asks_first(page: Any, live: Live) -> None:
    accounts = live.api.application.extensions["nongyun_auth"].accounts
    accounts.add("wang", PASSWORD, "editor", "211204101200", now_ms())
    asked: list[str] = []

    def dismiss(dialog: Any) -> None:
        asked.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", dismiss)
    page.goto(f"{live.base}/admin/users")
    page.click('#users tr[data-user="wang"] button[type=submit]')
    page.wait_for_timeout(300)
    assert asked and asked[0].startswith("确定停用账号 wang？")
    assert not accounts.get("wang").disabled  # dismissed: nothing was sent
    page.remove_listener("dialog", dismiss)
    page.on("dialog", lambda dialog: dialog.accept())
    with page.expect_navigation():
        page.click('#users tr[data-user="wang"] button[type=submit]')
    assert accounts.get("wang").disabled
    assert page.locator('#users tr[data-user="wang"] form[action$="/enable"]').count() == 1
    assert page.locator("#scope-pick option").count() == len(live.ctx.tree)  # district, townships, villages
    screenshot(page, "accounts")
    with page.expect_navigation():
        page.click("#back-dashboard")
    assert page.get_attribute("body", "data-tier") == "district"  # back on the dashboards


def test_retiring_a_device_asks_first(page: Any, live: Live) -> None:
    asked: list[str] = []

    def dismiss(dialog: Any) -> None:
        asked.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", dismiss)
    page.goto(f"{live.base}/admin/registry")
    device = page.get_attribute("#devices tbody tr", "data-device")
    page.click(f'#devices tr[data-device="{device}"] form[action$="/retire"] button')
    page.wait_for_timeout(300)
    assert asked and asked[0].startswith(f"确定停用设备 {device}？")
    assert live.ctx.registry.find(device) is not None  # dismissed: still registered
    screenshot(page, "registry")
    assert page.get_attribute("#back-dashboard", "href") == "/"
