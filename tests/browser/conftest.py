"""A live nongyun web app on a loopback port with a seeded SqliteStore, and Debian's chromium.

Playwright never downloads a browser here: it drives /usr/bin/chromium through ``executable_path``.
The browser's clock is pinned to the moment the data was seeded, so the page and the test ask the
API for exactly the same windows and must see exactly the same numbers.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.serving import WSGIRequestHandler, make_server

from service.context import Context, build
from service.settings import load
from service.store.sqlite import SqliteStore
from service.web import create_app
from service.web.assets import echarts_path, missing_warning
from tests.brokers import free_port
from tests.browser.seed import Seeded, seed

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
PHONE = {"width": 390, "height": 844}
SCREENSHOTS = Path(__file__).parent / "screenshots"
REPO = Path(__file__).resolve().parents[2]


def require_echarts() -> None:
    """The browser tests need the charts the package build provides, never a separate ``npm ci``."""
    if echarts_path() is None:
        pytest.fail(missing_warning() or "echarts.min.js is missing")


class _Quiet(WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


@dataclass
class Live:
    base: str
    api: FlaskClient
    ctx: Context
    seeded: Seeded

    def get(self, path: str, **query: Any) -> Any:
        resp = self.api.get(path, query_string=query or None)
        assert resp.status_code == 200, resp.get_data(as_text=True)
        return resp.get_json()


@contextmanager
def serving(app: Flask, api: FlaskClient, ctx: Context, store: SqliteStore, seeded: Seeded) -> Iterator[Live]:
    """The app on a loopback port in a thread, for the browser; the store closed afterwards."""
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Live(f"http://127.0.0.1:{server.server_port}", api, ctx, seeded)
    finally:
        server.shutdown()
        thread.join(timeout=10)
        store.close()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    require_echarts()
    folder = tmp_path_factory.mktemp("dashboards")
    settings = load(REPO / "config", env={}, overrides={"store.data_dir": str(folder / "data"),
                                                          "mqtt.url": f"mqtt://127.0.0.1:{free_port()}",
                                                          "web.auth": "off"})
    ctx = build(settings)
    store = SqliteStore(folder / "store.sqlite3")
    seeded = seed(ctx, store)
    app = create_app(ctx, store)
    with serving(app, app.test_client(), ctx, store, seeded) as found:
        yield found


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser: Any, live: Live) -> Iterator[Any]:
    """A phone-sized tab whose clock stands at the seeding moment; fails the test on a JS error.

    The browser's own zone is deliberately not the configured one (Asia/Shanghai): days and
    years on the page must follow the configuration, not the phone.
    """
    context = browser.new_context(viewport=PHONE, locale="zh-CN", timezone_id="America/Los_Angeles")
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    # the app's Content-Security-Policy must never have to refuse what its own pages do
    tab.on("console", lambda msg: errors.append(msg.text) if "Content Security Policy" in msg.text else None)
    tab.clock.set_fixed_time(datetime.fromtimestamp(live.seeded.now / 1000, UTC))
    yield tab
    context.close()
    assert not errors, f"JavaScript errors: {errors}"


def wait_js(tab: Any, expression: str, timeout: float = 30_000) -> None:
    """Poll a JavaScript expression until it is truthy. Not ``wait_for_function``: that compiles the
    expression inside the page, which the app's Content-Security-Policy (no eval) rightly forbids."""
    deadline = time.monotonic() + timeout / 1000
    while not tab.evaluate(f"() => Boolean({expression})"):
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {timeout / 1000:.0f} s: {expression}")
        tab.wait_for_timeout(100)


def open_page(tab: Any, live: Live, path: str) -> None:
    """Load a dashboard and wait for its first refresh to finish (or fail the test with the error)."""
    tab.goto(live.base + path)
    wait_js(tab, "document.body.dataset.loaded || document.body.dataset.failed")
    failed = tab.evaluate("document.body.dataset.failed")
    assert not failed, tab.text_content("#error")


def screenshot(tab: Any, name: str) -> Path:
    SCREENSHOTS.mkdir(exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    tab.screenshot(path=str(path), full_page=True)
    return path


CHARTS_DRAWN = """
(selector) => [...document.querySelectorAll(selector)].map((el) => {
  const chart = window.echarts && echarts.getInstanceByDom(el);
  const canvas = el.querySelector('canvas');
  let painted = 0;
  if (canvas) {
    const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    for (let i = 3; i < data.length; i += 4) if (data[i] > 0) painted++;
  }
  const series = chart ? chart.getOption().series || [] : [];
  return { id: el.id, canvas: !!canvas, painted,
           points: series.reduce((n, s) => n + (s.data ? s.data.filter((d) => d !== null).length : 0), 0) };
})
"""


def assert_charts_drawn(tab: Any, selector: str, expected: int) -> list[dict[str, Any]]:
    charts: list[dict[str, Any]] = tab.evaluate(CHARTS_DRAWN, selector)
    assert len(charts) == expected, charts
    for c in charts:
        assert c["canvas"], f"{c['id']}: no canvas"
        assert c["painted"] > 1000, f"{c['id']}: canvas is blank ({c['painted']} painted pixels)"
        assert c["points"] > 0, f"{c['id']}: chart has no data points"
    return charts
