"""Sessions that end when they should, on a real server (issue 12): a cookie copied before logout
is worthless after it; disabling an account ends its sessions and tokens, and enabling it again
revives neither unless the operator asks (``nongyun user enable --keep-tokens``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from service.auth import open_accounts
from service.context import build
from service.settings import load
from service.times import now_ms
from tests.conftest import CONFIG
from tests.security.server import ZX, Browser, Server, cli, start

API = "/api/v1/regions"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    found = start(tmp_path_factory.mktemp("sessions"), {"leaver": ("viewer", ZX), "clerk": ("editor", ZX),
                                                        "keeper": ("viewer", ZX)})
    try:
        yield found
    finally:
        found.stop()


def _token(server: Server, username: str) -> str:
    settings = load(CONFIG, env={}, overrides={"store.data_dir": str(server.data_dir)})
    return open_accounts(settings.data_dir, build(settings).tree).create_token(username, "script", now_ms()).text


def _bearer(server: Server, token: str) -> int:
    return Browser(server, "127.4.9.9").request("GET", API, {"Authorization": f"Bearer {token}"}).status_code


def test_after_logout_a_copied_cookie_is_refused(server: Server) -> None:
    browser = Browser(server, "127.4.0.1")
    assert browser.login("leaver").status_code == 302
    assert browser.request("GET", API).status_code == 200
    copied = Browser(server, "127.4.0.2", cookie=browser.cookie)  # the same cookie, elsewhere
    assert copied.request("GET", API).status_code == 200
    browser.form("/account/password")  # a page with the logout form's token
    assert browser.request("POST", "/logout", data={"csrf_token": browser.token}).status_code == 302
    replay = copied.request("GET", API)
    assert replay.status_code == 401 and replay.json()["error"]["code"] == "unauthorized"


def test_disable_then_enable_revives_neither_sessions_nor_tokens(server: Server) -> None:
    browser = Browser(server, "127.4.1.1")
    assert browser.login("clerk").status_code == 302
    cookie = browser.cookie
    token = _token(server, "clerk")
    assert _bearer(server, token) == 200
    disabled = cli(server.data_dir, "user", "disable", "clerk")
    assert disabled.returncode == 0, disabled.stderr
    assert Browser(server, "127.4.1.2", cookie=cookie).request("GET", API).status_code == 401
    assert _bearer(server, token) == 401
    enabled = cli(server.data_dir, "user", "enable", "clerk")
    assert enabled.returncode == 0, enabled.stderr
    assert "revoked" in enabled.stdout
    assert Browser(server, "127.4.1.2", cookie=cookie).request("GET", API).status_code == 401
    assert _bearer(server, token) == 401
    again = Browser(server, "127.4.1.1")
    assert again.login("clerk").status_code == 302 and again.request("GET", API).status_code == 200


def test_enable_keep_tokens_is_the_operators_explicit_choice(server: Server) -> None:
    token = _token(server, "keeper")
    assert cli(server.data_dir, "user", "disable", "keeper").returncode == 0
    assert _bearer(server, token) == 401
    kept = cli(server.data_dir, "user", "enable", "keeper", "--keep-tokens")
    assert kept.returncode == 0, kept.stderr
    assert _bearer(server, token) == 200
