"""Error pages for browsers (issue 19): 401, 403, 404 and 500 inside the site's frame (the header of
pages/base.html), in the page's language, with a link to the caller's own scope page; the API and
the pages' JSON data keep the JSON error body; ``/metrics`` asks for an admin."""

# ruff: noqa: F811  (fixtures imported from tests/access_support.py are parameters here)

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask, abort
from flask.testing import FlaskClient

from service.times import now_ms
from service.web.errors import PAGE_TEXT
from tests.access_support import V_DMT, V_QYM, YML, ZX, World, world  # noqa: F401 (fixture)

BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


def page(client: FlaskClient, path: str, status: int) -> str:
    resp = client.get(path, headers=BROWSER)
    assert resp.status_code == status, resp.get_data(as_text=True)[:300]
    assert resp.mimetype == "text/html"
    html = resp.get_data(as_text=True)
    assert '<header class="top">' in html and 'id="error-page"' in html  # the site's frame, not Werkzeug's
    assert "<script src=" not in html  # the frame alone: nothing that could fail to load
    return html


def back_link(html: str) -> str:
    found = re.search(r'id="error-back" href="([^"]+)"', html)
    assert found, html
    return found.group(1)


def test_a_village_editor_opening_another_township_gets_a_chinese_403_with_the_way_back(world: World) -> None:
    html = page(world.clients["village_editor"], f"/r/{YML}", 403)
    assert '<html lang="zh-CN">' in html
    assert PAGE_TEXT[403][0][0] in html and PAGE_TEXT[403][1][0] in html  # 无权访问
    assert back_link(html) == f"/r/{V_DMT}"
    assert "返回我的主页" in html
    assert "Forbidden" not in html and "You don't have the permission" not in html


def test_the_error_page_speaks_the_pages_language(world: World) -> None:
    html = page(world.clients["village_editor"], f"/r/{YML}?lang=en", 403)
    assert '<html lang="en">' in html and "Access denied" in html and "Back to my page" in html
    assert "无权访问" not in html
    client = world.clients["township_viewer"]
    client.set_cookie("nongyun_lang", "en")  # the switch's cookie counts as well
    try:
        assert "Not found" in page(client, "/d/no-such-device", 404)
    finally:
        client.delete_cookie("nongyun_lang")


@pytest.mark.parametrize(("caller", "path", "status", "scope"), [
    ("township_viewer", "/d/no-such-device", 404, ZX),
    ("township_viewer", "/r/211204999", 404, ZX),
    ("township_viewer", f"/r/{V_QYM}", 403, ZX),  # a village of another township
    ("village_viewer", "/export/yields.xlsx?region=211204102", 403, V_DMT),  # an export outside the scope
    ("township_viewer", "/no/such/page", 404, ZX),
    ("township_viewer", "/export/yields.csv?year=20x5", 400, ZX),
])
def test_every_refused_page_links_to_the_callers_scope(world: World, caller: str, path: str, status: int,
                                                       scope: str) -> None:
    html = page(world.clients[caller], path, status)
    assert back_link(html) == f"/r/{scope}"
    assert PAGE_TEXT[status][0][0] in html


def test_api_errors_and_page_data_stay_json_even_for_a_browser(world: World) -> None:
    client = world.clients["village_editor"]
    for path, status in (("/api/v1/regions/211204101999", 404), (f"/api/v1/yields?region={V_QYM}", 403),
                         (f"/r/{V_DMT}/yield-records.json?year=19", 400)):
        resp = client.get(path, headers=BROWSER)
        assert resp.status_code == status and resp.mimetype == "application/json", path
        assert set(resp.get_json()["error"]) >= {"code", "message"}
    # a script asking without text/html keeps the JSON body on page paths too
    resp = client.get(f"/r/{YML}", headers={"Accept": "application/json"})
    assert resp.status_code == 403 and resp.get_json()["error"]["code"] == "forbidden"


@pytest.fixture
def failing(world: World) -> Flask:
    """The world's app with two routes that fail, added once (Flask refuses routes after a request
    unless they are added before its first one, so this registers them on the app's url_map directly)."""
    app = world.app
    if "boom" not in app.view_functions:
        def boom() -> Any:
            raise RuntimeError("a bug")

        def login_needed() -> Any:
            abort(401)

        app._got_first_request = False  # adding a rule after requests is refused otherwise
        app.add_url_rule("/boom", "boom", boom)
        app.add_url_rule("/needs-login", "needs_login", login_needed)
    return app


def test_a_bug_on_a_page_is_a_500_page_in_the_frame_and_json_for_the_api_caller(failing: Flask,
                                                                                world: World) -> None:
    client = world.clients["township_editor"]
    html = page(client, "/boom", 500)
    assert PAGE_TEXT[500][0][0] in html and back_link(html) == f"/r/{ZX}"
    assert "a bug" not in html and "Traceback" not in html
    resp = client.get("/boom", headers={"Accept": "application/json"})
    assert resp.status_code == 500 and resp.get_json()["error"]["code"] == "internal"


def test_a_401_page_leads_to_the_login(failing: Flask, world: World) -> None:
    html = page(world.clients["township_viewer"], "/needs-login", 401)
    assert back_link(html) == "/login" and "去登录" in html


def test_metrics_needs_an_admin(world: World) -> None:
    anonymous = world.app.test_client().get("/metrics")
    assert anonymous.status_code == 401 and anonymous.headers["WWW-Authenticate"].startswith("Bearer")
    assert anonymous.get_json()["error"]["code"] == "unauthorized"  # not the login page's redirect
    assert world.clients["township_editor"].get("/metrics").status_code == 403
    assert world.clients["district_admin"].get("/metrics").status_code == 200
    token = world.accounts.create_token("district_admin", "prometheus", now_ms()).text
    scraped = world.app.test_client().get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert scraped.status_code == 200 and b"nongyun_ingest_messages_received" in scraped.data
    viewer = world.accounts.create_token("township_viewer", "prometheus", now_ms()).text
    refused = world.app.test_client().get("/metrics", headers={"Authorization": f"Bearer {viewer}"})
    assert refused.status_code == 403
