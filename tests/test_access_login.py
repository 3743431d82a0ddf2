"""Logging in and staying safe: cookie flags, CSRF on every form, the failed-login throttle,
API tokens (shown once, hashed, revocable, expiring), disabled accounts, the demo's login page,
and the ``nongyun user`` / ``nongyun token`` commands."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask import Flask

from service.auth import LoginFailed, LoginThrottled, SqliteAccounts, open_accounts
from service.auth.demo import DEMO_ACCOUNTS, DEMO_PASSWORD, ensure_demo_accounts
from service.auth.ratelimit import PER_CLIENT, PER_USER, WINDOW_MS
from service.cli import main
from service.context import build
from service.settings import Settings, load
from service.store.base import InRegion
from service.store.sqlite import SqliteStore
from service.times import DAY_MS, format_local, now_ms
from service.web import create_app
from tests.access_support import PASSWORD, V_DMT, V_QYM, ZX, cheap, csrf_of, login, page_csrf
from tests.brokers import free_port
from tests.conftest import CONFIG


@pytest.fixture
def on(tmp_path: Path) -> Settings:
    return load(CONFIG, env={}, overrides={"store.data_dir": str(tmp_path / "data"), "web.auth": "required",
                                           "mqtt.url": f"mqtt://127.0.0.1:{free_port()}"})


@pytest.fixture
def app(on: Settings, tmp_path: Path) -> Flask:
    store = SqliteStore(tmp_path / "store.sqlite3")
    accounts = cheap(on)
    accounts.add("editor", PASSWORD, "editor", ZX, now_ms())
    accounts.add("admin", PASSWORD, "admin", "211204", now_ms())
    return create_app(build(on), store)


def _harvest(village: str = V_DMT, plot: str = "p") -> dict[str, object]:
    from zoneinfo import ZoneInfo

    return {"village": village, "ts": format_local(now_ms() - 60_000, ZoneInfo("Asia/Shanghai")), "crop": "corn",
            "area_mu": 2, "yield_jin": 2000, "plot": plot}


def _records(app: Flask) -> int:
    store = app.extensions["nongyun"].store
    return len(store.yield_records(InRegion("district", "211204"), 0, now_ms() + DAY_MS, limit=1000))


# -- login, cookie ----------------------------------------------------------------------------


def test_a_weaker_hash_is_upgraded_at_login(app: Flask, on: Settings) -> None:
    before = SqliteAccounts.in_dir(on.data_dir).user("editor")
    assert before is not None and "m=1024" in before[1]
    login(app.test_client(), "editor")
    after = SqliteAccounts.in_dir(on.data_dir).user("editor")
    assert after is not None and after[1].startswith("$argon2id$") and "m=65536" in after[1]


def test_login_sets_a_hardened_session_cookie_and_a_wrong_password_does_not(app: Flask) -> None:
    client = app.test_client()
    bad = login(client, "editor", "wrong password!")
    assert bad.status_code == 401 and "login-error" in bad.get_data(as_text=True)
    assert client.get("/api/v1/regions").status_code == 401
    good = login(client, "editor")
    assert good.status_code == 302 and good.location == "/"
    cookie = next(h for h in good.headers.getlist("Set-Cookie") if h.startswith("nongyun_session="))
    assert "HttpOnly" in cookie and "Secure" in cookie and "SameSite=Lax" in cookie
    assert client.get("/api/v1/regions").get_json()["scope"] == ZX


def test_login_never_redirects_off_the_site(app: Flask) -> None:
    client = app.test_client()
    token = page_csrf(client)
    for target in ("//evil.example/x", "https://evil.example/", "/\\evil.example", "javascript:alert(1)"):
        resp = client.post("/login", data={"username": "editor", "password": PASSWORD, "csrf_token": token,
                                           "next": target})
        assert resp.status_code == 302 and resp.location == "/", target
        token = page_csrf(client)
    resp = client.post("/login", data={"username": "editor", "password": PASSWORD, "csrf_token": token,
                                       "next": f"/r/{V_DMT}?lang=en"})
    assert resp.location == f"/r/{V_DMT}?lang=en"


def test_pages_send_anonymous_visitors_to_the_login_page_and_back(app: Flask) -> None:
    client = app.test_client()
    resp = client.get(f"/r/{V_DMT}")
    assert resp.status_code == 302 and resp.location.startswith("/login?next=")
    page = client.get(resp.location).get_data(as_text=True)
    assert f'value="/r/{V_DMT}"' in page


# -- CSRF -------------------------------------------------------------------------------------


def test_a_form_post_without_the_csrf_token_is_refused(app: Flask) -> None:
    client = app.test_client()
    client.get("/login")
    resp = client.post("/login", data={"username": "editor", "password": PASSWORD})
    assert resp.status_code == 400 and b"CSRF" in resp.data
    assert client.get("/api/v1/regions").status_code == 401  # not logged in
    wrong = client.post("/login", data={"username": "editor", "password": PASSWORD, "csrf_token": "forged"})
    assert wrong.status_code == 400


def test_a_cookie_borne_api_post_needs_the_csrf_header_and_a_bearer_one_does_not(app: Flask) -> None:
    client = app.test_client()
    login(client, "editor")
    before = _records(app)
    refused = client.post("/api/v1/yields", json=_harvest(plot="P211204101200-01"))
    assert refused.status_code == 400 and refused.get_json()["error"]["code"] == "bad_request"
    assert "CSRF" in refused.get_json()["error"]["message"]
    assert _records(app) == before
    ok = client.post("/api/v1/yields", json=_harvest(plot="P211204101200-02"),
                     headers={"X-CSRFToken": page_csrf(client)})
    assert ok.status_code == 201
    accounts = app.extensions["nongyun_auth"].accounts
    bearer = accounts.create_token("editor", "script", now_ms()).text
    scripted = app.test_client().post("/api/v1/yields", json=_harvest(plot="P211204101200-03"),
                                      headers={"Authorization": f"Bearer {bearer}"})
    assert scripted.status_code == 201
    assert _records(app) == before + 2


def test_logout_and_the_accounts_form_need_the_token_too(app: Flask) -> None:
    client = app.test_client()
    login(client, "admin")
    assert client.post("/logout").status_code == 400
    assert client.get("/api/v1/regions").status_code == 200  # still logged in
    assert client.post("/admin/users", data={"username": "x1", "password": PASSWORD, "role": "viewer",
                                             "scope": ZX}).status_code == 400
    token = page_csrf(client, "/admin/users")
    made = client.post("/admin/users", data={"username": "x1", "password": PASSWORD, "role": "viewer",
                                             "scope": ZX, "csrf_token": token})
    assert made.status_code == 302
    assert "x1" in client.get("/admin/users").get_data(as_text=True)
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/api/v1/regions").status_code == 401


def test_a_township_admin_cannot_create_accounts_beyond_its_township(app: Flask) -> None:
    accounts = app.extensions["nongyun_auth"].accounts
    accounts.add("zx-admin", PASSWORD, "admin", ZX, now_ms())
    client = app.test_client()
    login(client, "zx-admin")
    token = page_csrf(client, "/admin/users")
    resp = client.post("/admin/users", data={"username": "spy", "password": PASSWORD, "role": "admin",
                                             "scope": "211204", "csrf_token": token})
    assert resp.status_code == 400 and accounts.store.user("spy") is None
    listed = client.get("/admin/users").get_data(as_text=True)
    assert 'data-user="zx-admin"' in listed and 'data-user="admin"' not in listed  # the district's is not its own


# -- failed-login throttle --------------------------------------------------------------------


def test_failed_logins_are_throttled_per_account_even_with_the_right_password(app: Flask) -> None:
    client = app.test_client()
    for _ in range(PER_USER):
        assert login(client, "editor", "not the password").status_code == 401
    locked = login(client, "editor")  # the right password, but too late
    assert locked.status_code == 429 and int(locked.headers["Retry-After"]) > 0
    assert client.get("/api/v1/regions").status_code == 401
    assert login(app.test_client(), "admin").status_code == 302  # another account is not locked


def test_the_throttle_ends_when_the_window_has_passed(on: Settings) -> None:
    accounts = cheap(on)
    accounts.add("clerk", PASSWORD, "viewer", ZX, now_ms())
    t0 = now_ms()
    for i in range(PER_USER):
        with pytest.raises(LoginFailed):
            accounts.login("clerk", "nope-nope-nope", "10.0.0.1", t0 + i)
    with pytest.raises(LoginThrottled) as exc:
        accounts.login("clerk", PASSWORD, "10.0.0.1", t0 + PER_USER)
    assert 0 < exc.value.retry_after_s <= WINDOW_MS // 1000
    assert accounts.login("clerk", PASSWORD, "10.0.0.1", t0 + WINDOW_MS + 1).username == "clerk"


def test_one_client_trying_many_names_is_throttled(on: Settings) -> None:
    accounts = cheap(on)
    accounts.add("clerk", PASSWORD, "viewer", ZX, now_ms())
    t0 = now_ms()
    for i in range(PER_CLIENT):
        with pytest.raises(LoginFailed):
            accounts.login(f"guess{i}", "whatever-whatever", "10.0.0.9", t0 + i)
    with pytest.raises(LoginThrottled):
        accounts.login("clerk", PASSWORD, "10.0.0.9", t0 + PER_CLIENT)
    assert accounts.login("clerk", PASSWORD, "10.0.0.10", t0 + PER_CLIENT).username == "clerk"


# -- API tokens -------------------------------------------------------------------------------


def test_tokens_are_stored_hashed_scoped_revocable_and_expire(app: Flask, on: Settings) -> None:
    accounts = app.extensions["nongyun_auth"].accounts
    made = accounts.create_token("editor", "grafana", now_ms(), days=30)
    auth = {"Authorization": f"Bearer {made.text}"}
    client = app.test_client()
    assert client.get("/api/v1/regions", headers=auth).get_json()["scope"] == ZX
    assert client.get(f"/api/v1/regions/{V_QYM}", headers=auth).status_code == 403
    with sqlite3.connect(Path(on.data_dir) / "accounts.sqlite3") as conn:
        stored = conn.execute("SELECT * FROM tokens").fetchall()
    assert made.text.split("_")[2] not in repr(stored)  # only its SHA-256 is kept
    accounts.revoke_token(made.info.id, now_ms())
    revoked = client.get("/api/v1/regions", headers=auth)
    assert revoked.status_code == 401 and revoked.get_json()["error"]["code"] == "unauthorized"
    old = accounts.create_token("editor", "old", now_ms() - 2 * DAY_MS, days=1)
    assert client.get("/api/v1/regions", headers={"Authorization": f"Bearer {old.text}"}).status_code == 401
    for junk in ("Bearer", "Bearer nyt_0000000000000000_" + "A" * 43, "Basic ZWRpdG9yOnB3", f"Bearer {made.text}x"):
        assert client.get("/api/v1/regions", headers={"Authorization": junk}).status_code == 401, junk


def test_disabling_an_account_ends_its_session_and_its_tokens_at_once(app: Flask) -> None:
    accounts = app.extensions["nongyun_auth"].accounts
    client = app.test_client()
    login(client, "editor")
    token = accounts.create_token("editor", "s", now_ms()).text
    assert client.get("/api/v1/regions").status_code == 200
    accounts.store.set_disabled("editor", True)
    assert client.get("/api/v1/regions").status_code == 401
    assert app.test_client().get("/api/v1/regions", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert login(app.test_client(), "editor").status_code == 401


def test_web_workers_on_one_data_folder_share_the_session_key(app: Flask, on: Settings, tmp_path: Path) -> None:
    client = app.test_client()
    login(client, "editor")
    other = create_app(build(on), SqliteStore(tmp_path / "other.sqlite3"))
    cookie = client.get_cookie("nongyun_session")
    assert cookie is not None
    second = other.test_client()
    second.set_cookie("nongyun_session", cookie.value)
    assert second.get("/api/v1/regions").status_code == 200
    assert oct((Path(on.data_dir) / "secret_key").stat().st_mode & 0o777) == "0o600"


# -- demo -------------------------------------------------------------------------------------


def test_the_demo_login_page_lists_its_accounts_under_a_banner_and_a_real_one_does_not(app: Flask) -> None:
    page = app.test_client().get("/login").get_data(as_text=True)
    assert 'id="demo-banner"' not in page and DEMO_PASSWORD not in page
    accounts = app.extensions["nongyun_auth"].accounts
    assert ensure_demo_accounts(accounts, now_ms()) == [d.username for d in DEMO_ACCOUNTS]
    assert ensure_demo_accounts(accounts, now_ms()) == []  # a second demo run keeps them
    page = app.test_client().get("/login").get_data(as_text=True)
    assert 'id="demo-banner"' in page and "演示" in page and DEMO_PASSWORD in page
    for d in DEMO_ACCOUNTS:
        assert d.username in page
        client = app.test_client()
        assert login(client, d.username, DEMO_PASSWORD).status_code == 302
        assert client.get("/api/v1/regions").status_code == 200


def test_with_auth_off_nothing_asks_for_a_login(settings: Settings, tmp_path: Path) -> None:
    app = create_app(build(settings), SqliteStore(tmp_path / "s.sqlite3"))
    client = app.test_client()
    assert client.get("/login").status_code == 302
    assert client.get("/api/v1/health").status_code == 200
    assert "scope" not in client.get("/api/v1/regions").get_json()


# -- commands ---------------------------------------------------------------------------------


def test_user_and_token_commands(tmp_path: Path) -> None:
    env = {"NONGYUN_CONFIG": str(CONFIG), "NONGYUN_DATA_DIR": str(tmp_path / "data")}
    run = CliRunner()
    made = run.invoke(main, ["user", "add", "wang", "--role", "editor", "--scope", ZX], env=env,
                      input=f"{PASSWORD}\n{PASSWORD}\n")
    assert made.exit_code == 0, made.output
    short = run.invoke(main, ["user", "add", "li", "--role", "viewer", "--scope", ZX, "--password", "short"], env=env)
    assert short.exit_code == 1 and "password" in short.output
    nowhere = run.invoke(main, ["user", "add", "li", "--role", "viewer", "--scope", "999999", "--password", PASSWORD],
                         env=env)
    assert nowhere.exit_code == 1 and "scope" in nowhere.output
    listed = run.invoke(main, ["user", "list"], env=env)
    assert "wang" in listed.output and "editor" in listed.output and ZX in listed.output
    created = run.invoke(main, ["token", "create", "wang", "--name", "excel", "--days", "7"], env=env)
    assert created.exit_code == 0, created.output
    text = created.stdout.strip().splitlines()[-1]
    assert text.startswith("nyt_")
    accounts = open_accounts(tmp_path / "data", build(load(CONFIG, env={})).tree)
    assert accounts.token_account(text, now_ms()) is not None
    assert text not in run.invoke(main, ["token", "list"], env=env).output  # never shown again
    assert run.invoke(main, ["token", "revoke", text.split("_")[1]], env=env).exit_code == 0
    assert accounts.token_account(text, now_ms()) is None
    assert run.invoke(main, ["user", "disable", "wang"], env=env).exit_code == 0
    assert "disabled" in run.invoke(main, ["user", "list"], env=env).output
    assert run.invoke(main, ["user", "disable", "nobody"], env=env).exit_code == 1


def test_login_form_token_matches_the_meta_tag_of_the_pages(app: Flask) -> None:
    client = app.test_client()
    login(client, "editor")
    page = client.get(f"/r/{V_DMT}").get_data(as_text=True)
    assert csrf_of(page)
