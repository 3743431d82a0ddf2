"""``web.auth = off`` on a real server (issue 12): nobody logs in there, so any page the operator
opens could post to it. A cross-site form post (no CSRF token, a foreign Origin) is refused and
creates nothing, and a request naming a foreign host (DNS rebinding) is refused before any view."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from service.auth import SqliteAccounts
from tests.security.server import PASSWORD, Browser, Server, start

EVIL = "http://evil.example"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    found = start(tmp_path_factory.mktemp("open"), NONGYUN_WEB_AUTH="off")
    try:
        yield found
    finally:
        found.stop()


def _no_accounts(server: Server) -> bool:
    return SqliteAccounts.in_dir(server.data_dir).users() == []


def test_a_cross_site_form_post_is_refused(server: Server) -> None:
    operator = Browser(server, "127.5.0.1")
    form = {"username": "intruder", "password": PASSWORD, "role": "admin", "scope": "211204"}
    foreign = operator.request("POST", "/admin/users", {"Origin": EVIL, "Referer": f"{EVIL}/x"}, data=form)
    assert foreign.status_code == 403 and foreign.json()["error"]["code"] == "forbidden"
    no_origin = operator.request("POST", "/admin/users", data=form)  # an old browser: the token still decides
    assert no_origin.status_code == 400 and "CSRF" in no_origin.text
    assert _no_accounts(server)
    simple = operator.request("POST", "/api/v1/alerts/1/ack", {"Origin": EVIL, "Content-Type": "text/plain"},
                              data='{"by": "x"}')
    assert simple.status_code == 403
    plain = operator.request("POST", "/api/v1/alerts/1/ack", {"Content-Type": "text/plain"}, data='{"by": "x"}')
    assert plain.status_code == 400 and "CSRF" in plain.json()["error"]["message"]
    # what the site's own pages do still works: its form with its token, its script's JSON
    operator.form("/admin/users")
    made = operator.request("POST", "/admin/users", {"Origin": server.url},
                            data=form | {"username": "district-admin", "csrf_token": operator.token})
    assert made.status_code == 302
    assert [a.username for a in SqliteAccounts.in_dir(server.data_dir).users()] == ["district-admin"]
    json_post = operator.request("POST", "/api/v1/alerts/999999/ack", {"Origin": server.url}, json={})
    assert json_post.status_code == 404  # past the checks, to the view: no such alert


def test_a_foreign_host_header_is_refused(server: Server) -> None:
    browser = Browser(server, "127.5.0.2")
    for path in ("/api/v1/regions", "/", "/admin/users"):
        resp = browser.request("GET", path, {"Host": "evil.example"})
        assert resp.status_code == 400, path
        assert resp.json()["error"]["code"] == "bad_request" and resp.json()["error"]["field"] == "Host"
    rebound = browser.request("POST", "/api/v1/alerts/1/ack", {"Host": f"evil.example:{server.port}"}, json={})
    assert rebound.status_code == 400
    for host in (f"127.0.0.1:{server.port}", f"localhost:{server.port}", "[::1]"):
        assert browser.request("GET", "/api/v1/regions", {"Host": host}).status_code == 200, host
