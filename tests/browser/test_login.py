"""Logging in with a real browser on plain http://127.0.0.1 (the demo's address): the Secure,
HttpOnly session cookie is kept, the page's script sends the CSRF token with a harvest, a viewer
gets no form, and a page beside the scope is refused."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import make_server

from service.auth import open_accounts
from service.context import build
from service.settings import load
from service.store.sqlite import SqliteStore
from service.times import now_ms
from service.web import create_app
from tests.brokers import free_port
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, PHONE, REPO, _Quiet, require_echarts, screenshot, wait_js

pytestmark = pytest.mark.browser

DMT, QYM = "211204101200", "211204102200"
PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    require_echarts()
    folder: Path = tmp_path_factory.mktemp("login")
    settings = load(REPO / "config", env={}, overrides={"store.data_dir": str(folder / "data"),
                                                          "mqtt.url": f"mqtt://127.0.0.1:{free_port()}"})
    ctx = build(settings)
    accounts = open_accounts(settings.data_dir, ctx.tree)
    accounts.add("clerk", PASSWORD, "editor", DMT, now_ms())
    accounts.add("reader", PASSWORD, "viewer", DMT, now_ms())
    store = SqliteStore(folder / "store.sqlite3")
    server = make_server("127.0.0.1", 0, create_app(ctx, store), threaded=True, request_handler=_Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        store.close()


@pytest.fixture
def tab(site: str) -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport=PHONE, locale="zh-CN")
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        yield page
        context.close()
        browser.close()
        assert not errors, f"JavaScript errors: {errors}"


def _login(tab: Any, site: str, user: str, path: str) -> None:
    tab.goto(f"{site}{path}")
    assert "/login" in tab.url
    tab.fill("#login-form [name=username]", user)
    tab.fill("#login-form [name=password]", PASSWORD)
    tab.click("#login-form button[type=submit]")
    tab.wait_for_url(f"{site}{path}")
    wait_js(tab, "document.body.dataset.loaded || document.body.dataset.failed")


def test_an_editor_logs_in_and_enters_a_harvest(tab: Any, site: str) -> None:
    _login(tab, site, "clerk", f"/r/{DMT}")
    cookie = next(c for c in tab.context.cookies() if c["name"] == "nongyun_session")
    assert cookie["secure"] and cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    assert tab.text_content("#who") == "clerk"
    tab.fill("#harvest-form [name=area_mu]", "3")
    tab.fill("#harvest-form [name=yield_jin]", "3300")
    tab.click("#harvest-form button[type=submit]")
    tab.locator("#harvest-ok").wait_for(state="visible")  # the POST carried X-CSRFToken
    screenshot(tab, "village-logged-in")
    beside = tab.goto(f"{site}/r/{QYM}")
    assert beside is not None and beside.status == 403
    tab.goto(f"{site}/r/{DMT}")
    tab.click("form.logout button")
    tab.wait_for_url(f"{site}/login")


def test_a_viewer_sees_the_village_but_no_harvest_form(tab: Any, site: str) -> None:
    _login(tab, site, "reader", f"/r/{DMT}")
    assert tab.locator("#harvest-form").count() == 0
    assert tab.evaluate("document.body.dataset.failed") is None
