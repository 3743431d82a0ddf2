"""Keeping accounts alive: enabling a disabled account again, new passwords (the ``nongyun user``
commands, one's own form, the admin page), and the client address behind a reverse proxy
(``web.proxy_hops``) that the failed-login throttle counts."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from service.auth import LoginFailed, LoginThrottled
from service.auth.ratelimit import PER_CLIENT, PER_USER, WINDOW_MS
from service.cli import main
from service.context import build
from service.settings import Settings, load
from service.store.sqlite import SqliteStore
from service.times import now_ms
from service.web import create_app
from tests.access_support import PASSWORD, ZX, cheap, login, page_csrf
from tests.brokers import free_port
from tests.conftest import CONFIG

NEW = "a brand new passphrase"


def _settings(tmp_path: Path, **overrides: object) -> Settings:
    return load(CONFIG, env={}, overrides={"store.data_dir": str(tmp_path / "data"), "web.auth": "required",
                                           "mqtt.url": f"mqtt://127.0.0.1:{free_port()}", **overrides})


@pytest.fixture
def on(tmp_path: Path) -> Settings:
    return _settings(tmp_path)


def _app(on: Settings, tmp_path: Path) -> Flask:
    accounts = cheap(on)
    accounts.add("clerk", PASSWORD, "viewer", ZX, now_ms())
    accounts.add("admin", PASSWORD, "admin", "211204", now_ms())
    accounts.add("zx-admin", PASSWORD, "admin", ZX, now_ms())
    return create_app(build(on), SqliteStore(tmp_path / "store.sqlite3"))


@pytest.fixture
def app(on: Settings, tmp_path: Path) -> Flask:
    return _app(on, tmp_path)


def _change(client: FlaskClient, current: str, new: str, confirm: str | None = None,
            token: str | None = None) -> TestResponse:
    return client.post("/account/password", data={
        "current": current, "new": new, "confirm": new if confirm is None else confirm,
        "csrf_token": token if token is not None else page_csrf(client, "/account/password")})


def _logged_in(client: FlaskClient) -> bool:
    return client.get("/api/v1/regions").status_code == 200


# -- commands ---------------------------------------------------------------------------------


def test_user_enable_and_passwd_commands(tmp_path: Path, on: Settings) -> None:
    env = {"NONGYUN_CONFIG": str(CONFIG), "NONGYUN_DATA_DIR": str(on.data_dir)}
    run = CliRunner()
    accounts = cheap(on)
    accounts.add("wang", PASSWORD, "editor", ZX, now_ms())
    assert run.invoke(main, ["user", "disable", "wang"], env=env).exit_code == 0
    with pytest.raises(LoginFailed):
        accounts.login("wang", PASSWORD, "10.0.0.1", now_ms())
    enabled = run.invoke(main, ["user", "enable", "wang"], env=env)
    assert enabled.exit_code == 0, enabled.output
    assert "active" in run.invoke(main, ["user", "list"], env=env).output
    assert accounts.login("wang", PASSWORD, "10.0.0.1", now_ms()).username == "wang"
    assert run.invoke(main, ["user", "enable", "nobody"], env=env).exit_code == 1

    # prompted twice with hidden input; a mismatch asks again, and nothing is echoed back
    typed = run.invoke(main, ["user", "passwd", "wang"], env=env, input=f"{NEW}\nsomething else\n{NEW}\n{NEW}\n")
    assert typed.exit_code == 0, typed.output
    assert NEW not in typed.output and "do not match" in typed.output.lower()
    with pytest.raises(LoginFailed):
        accounts.login("wang", PASSWORD, "10.0.0.1", now_ms())
    assert accounts.login("wang", NEW, "10.0.0.1", now_ms()).username == "wang"

    # --password-stdin for scripts: the first line, without its line ending
    scripted = run.invoke(main, ["user", "passwd", "wang", "--password-stdin"], env=env, input=f"{PASSWORD}\r\n")
    assert scripted.exit_code == 0, scripted.output
    assert accounts.login("wang", PASSWORD, "10.0.0.1", now_ms()).username == "wang"
    short = run.invoke(main, ["user", "passwd", "wang", "--password-stdin"], env=env, input="short\n")
    assert short.exit_code == 1 and "password" in short.output
    assert accounts.login("wang", PASSWORD, "10.0.0.1", now_ms()).username == "wang"  # unchanged
    nobody = run.invoke(main, ["user", "passwd", "nobody"], env=env, input=f"{NEW}\n{NEW}\n")
    assert nobody.exit_code == 1 and "nobody" in nobody.output and "New password" not in nobody.output


def test_a_new_password_from_the_command_ends_the_accounts_sessions_but_not_its_tokens(app: Flask,
                                                                                        on: Settings) -> None:
    accounts = app.extensions["nongyun_auth"].accounts
    client = app.test_client()
    login(client, "clerk")
    token = accounts.create_token("clerk", "script", now_ms()).text
    env = {"NONGYUN_CONFIG": str(CONFIG), "NONGYUN_DATA_DIR": str(on.data_dir)}
    assert CliRunner().invoke(main, ["user", "passwd", "clerk", "--password-stdin"], env=env,
                              input=NEW).exit_code == 0
    assert not _logged_in(client)
    assert app.test_client().get("/api/v1/regions", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def cheap_login_fails(app: Flask, password: str) -> bool:
    """Whether ``clerk`` refuses ``password``, checked on the store directly (past the throttle)."""
    found = app.extensions["nongyun_auth"].accounts.store.user("clerk")
    assert found is not None
    return not app.extensions["nongyun_auth"].accounts.passwords.verify(found[1], password)


# -- one's own password -----------------------------------------------------------------------


def test_a_logged_in_user_changes_their_password_and_other_sessions_end(app: Flask) -> None:
    here, elsewhere = app.test_client(), app.test_client()
    login(here, "clerk")
    login(elsewhere, "clerk")
    form = here.get("/account/password")
    assert form.status_code == 200
    page = form.get_data(as_text=True)
    assert 'name="current"' in page and 'minlength="10"' in page and 'type="password"' in page
    done = _change(here, PASSWORD, NEW)
    assert done.status_code == 302 and done.location.startswith("/account/password")
    assert 'id="password-done"' in here.get(done.location).get_data(as_text=True)
    assert _logged_in(here)  # this session carries on
    assert not _logged_in(elsewhere)  # a session opened with the old password has ended
    assert login(app.test_client(), "clerk").status_code == 401
    assert login(app.test_client(), "clerk", NEW).status_code == 302


def test_the_password_form_checks_csrf_the_current_password_the_length_and_the_repeat(app: Flask) -> None:
    client = app.test_client()
    login(client, "clerk")
    no_csrf = client.post("/account/password", data={"current": PASSWORD, "new": NEW, "confirm": NEW})
    assert no_csrf.status_code == 400 and b"CSRF" in no_csrf.data
    forged = _change(client, PASSWORD, NEW, token="forged")
    assert forged.status_code == 400
    wrong = _change(client, "not my password", NEW)
    assert wrong.status_code == 400 and 'id="password-error"' in wrong.get_data(as_text=True)
    assert _change(client, PASSWORD, NEW, confirm=NEW + "!").status_code == 400
    assert _change(client, PASSWORD, "short").status_code == 400
    assert _change(client, PASSWORD, "x" * 300).status_code == 400
    assert _logged_in(client)
    assert login(app.test_client(), "clerk").status_code == 302  # the old password still stands


def test_guessing_the_current_password_through_a_borrowed_session_is_throttled(app: Flask) -> None:
    client = app.test_client()
    login(client, "clerk")
    for _ in range(PER_USER):
        assert _change(client, "guess guess guess", NEW).status_code == 400
    locked = _change(client, PASSWORD, NEW)  # the right one, too late
    assert locked.status_code == 429 and int(locked.headers["Retry-After"]) > 0
    assert _logged_in(client)  # the session itself stays
    assert login(app.test_client(), "clerk", NEW).status_code == 429  # locked, and NEW was never set
    assert cheap_login_fails(app, NEW)


def test_the_password_form_needs_a_login_and_an_account(app: Flask, settings: Settings, tmp_path: Path) -> None:
    anonymous = app.test_client().get("/account/password")
    assert anonymous.status_code == 302 and anonymous.location.startswith("/login")
    anon = app.test_client()  # a cookie-less form post: refused by the CSRF check before anything else
    assert anon.post("/account/password", data={"current": PASSWORD, "new": NEW, "confirm": NEW}).status_code == 400
    open_app = create_app(build(settings), SqliteStore(tmp_path / "open.sqlite3"))  # web.auth = off
    assert open_app.test_client().get("/account/password").status_code == 404


# -- admins enable accounts again -------------------------------------------------------------


def test_an_admin_disables_and_enables_an_account_of_their_scope(app: Flask) -> None:
    admin, clerk = app.test_client(), app.test_client()
    login(admin, "admin")
    token = page_csrf(admin, "/admin/users")
    assert admin.post("/admin/users/clerk/disable", data={"csrf_token": token}).status_code == 302
    assert login(clerk, "clerk").status_code == 401
    listed = admin.get("/admin/users").get_data(as_text=True)
    assert "/admin/users/clerk/enable" in listed and "/admin/users/clerk/disable" not in listed
    assert admin.post("/admin/users/clerk/enable").status_code == 400  # CSRF
    assert admin.post("/admin/users/clerk/enable", data={"csrf_token": token}).status_code == 302
    assert login(clerk, "clerk").status_code == 302 and _logged_in(clerk)
    # enabling an account that is active already changes nothing, and ends none of its sessions
    assert admin.post("/admin/users/clerk/enable", data={"csrf_token": token}).status_code == 302
    assert _logged_in(clerk)
    assert "/admin/users/clerk/disable" in admin.get("/admin/users").get_data(as_text=True)


def test_an_admin_cannot_disable_itself_and_the_page_offers_no_such_button(app: Flask) -> None:
    accounts = app.extensions["nongyun_auth"].accounts
    admin = app.test_client()
    login(admin, "admin")
    listed = admin.get("/admin/users").get_data(as_text=True)
    assert "/admin/users/admin/disable" not in listed and 'data-user="admin" data-self="1"' in listed
    # every other disable asks first (confirm.js reads data-confirm; no inline script under the CSP)
    assert 'data-confirm="确定停用账号 clerk？' in listed and "/assets/confirm.js" in listed
    token = page_csrf(admin, "/admin/users")
    refused = admin.post("/admin/users/admin/disable", data={"csrf_token": token})  # a forged click
    text = refused.get_data(as_text=True)
    assert refused.status_code == 400 and "不能停用自己正在使用的账号" in text and 'id="users-error"' in text
    assert not accounts.get("admin").disabled and _logged_in(admin)  # still in, still an admin
    english = admin.post("/admin/users/admin/disable?lang=en", data={"csrf_token": token})
    assert english.status_code == 400 and "You cannot disable the account you are using" in english.get_data(
        as_text=True)
    # another admin of the district may: it is only oneself that is refused
    accounts.add("admin2", PASSWORD, "admin", "211204", now_ms())
    other = app.test_client()
    login(other, "admin2")
    assert other.post("/admin/users/admin/disable", data={"csrf_token": page_csrf(other, "/admin/users")}
                      ).status_code == 302
    assert accounts.get("admin").disabled


def test_the_accounts_form_picks_the_scope_from_the_tree_and_keeps_what_was_typed(app: Flask) -> None:
    zx = app.test_client()
    login(zx, "zx-admin")
    page = zx.get("/admin/users").get_data(as_text=True)
    assert 'href="/" id="back-dashboard"' in page  # the way back to the dashboards
    assert '<select name="scope"' in page and '<input name="scope"' not in page
    assert f'<option value="{ZX}" data-level="township" selected>张相镇 {ZX}</option>' in page
    assert 'value="211204101200" data-level="village">\u3000大孟屯村 211204101200</option>' in page
    assert 'value="211204"' not in page  # nothing above the admin's own scope is offered
    assert ">录入</option>" in page and ">editor</option>" not in page  # roles in the page's language
    token = page_csrf(zx, "/admin/users")
    weak = zx.post("/admin/users", data={"username": "wang", "password": "short", "role": "editor",
                                         "scope": "211204101200", "csrf_token": token})
    text = weak.get_data(as_text=True)
    assert weak.status_code == 400 and "密码太弱" in text and "password:" not in text  # no English developer text
    assert 'value="wang"' in text and 'value="211204101200" data-level="village" selected' in text
    assert '<option value="editor" selected>' in text
    outside = zx.post("/admin/users", data={"username": "wang", "password": PASSWORD, "role": "editor",
                                            "scope": "211204999", "csrf_token": token})
    assert outside.status_code == 400 and "请从列表中选择" in outside.get_data(as_text=True)


def test_the_registry_page_asks_before_retiring_and_leads_back(app: Flask) -> None:
    admin = app.test_client()
    login(admin, "admin")
    page = admin.get("/admin/registry")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert 'href="/" id="back-dashboard"' in text and "/assets/confirm.js" in text
    retire_forms = text.count("/retire\"")
    assert retire_forms > 2 and text.count("data-confirm=") == retire_forms  # every 停用 asks first
    assert 'data-confirm="确定停用设备 qh-st-101200-1？' in text
    assert "Retire the device qh-st-101200-1?" in admin.get("/admin/registry?lang=en").get_data(as_text=True)
    with admin.get("/assets/confirm.js") as script:  # a file response: closed, not left to the collector
        assert script.status_code == 200 and b"data-confirm" in script.data


def test_only_admins_enable_and_only_inside_their_scope(app: Flask) -> None:
    accounts = app.extensions["nongyun_auth"].accounts
    accounts.set_disabled("admin", True)
    accounts.set_disabled("clerk", True)
    zx = app.test_client()
    login(zx, "zx-admin")
    token = page_csrf(zx, "/admin/users")
    assert zx.post("/admin/users/admin/enable", data={"csrf_token": token}).status_code == 404  # the district's
    assert zx.post("/admin/users/nobody/enable", data={"csrf_token": token}).status_code == 404
    assert accounts.get("admin").disabled
    accounts.add("viewer", PASSWORD, "viewer", ZX, now_ms())
    viewer = app.test_client()
    login(viewer, "viewer")
    assert viewer.post("/admin/users/clerk/enable", data={"csrf_token": page_csrf(viewer)}).status_code == 403
    assert accounts.get("clerk").disabled
    assert zx.post("/admin/users/clerk/enable", data={"csrf_token": token}).status_code == 302
    assert not accounts.get("clerk").disabled


# -- behind a reverse proxy -------------------------------------------------------------------


def _block(app: Flask, client_addr: str) -> None:
    """As if this address had just failed PER_CLIENT logins (with many names)."""
    store = app.extensions["nongyun_auth"].accounts.store
    now = now_ms()
    for i in range(PER_CLIENT):
        store.add_failure([f"client:{client_addr}"], now - i, now - WINDOW_MS)


def _login_from(app: Flask, forwarded_for: str | None) -> int:
    client = app.test_client()
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    token = page_csrf(client)
    return client.post("/login", headers=headers, data={"username": "clerk", "password": PASSWORD,
                                                         "csrf_token": token, "next": "/"}).status_code


def test_behind_one_proxy_the_throttle_counts_the_forwarded_client(tmp_path: Path) -> None:
    app = _app(_settings(tmp_path, **{"web.proxy_hops": 1}), tmp_path)
    _block(app, "203.0.113.7")
    assert _login_from(app, "203.0.113.7") == 429
    assert _login_from(app, "203.0.113.8") == 302  # another client behind the same proxy
    # the proxy appends the peer it saw; what the client wrote before that is not believed
    assert _login_from(app, "203.0.113.7, 198.51.100.1") == 302
    assert _login_from(app, "198.51.100.1, 203.0.113.7") == 429


def test_without_proxy_hops_a_forwarded_header_is_not_believed(tmp_path: Path) -> None:
    app = _app(_settings(tmp_path), tmp_path)
    _block(app, "203.0.113.7")
    assert _login_from(app, "203.0.113.7") == 302  # a made-up header gets nobody else throttled
    _block(app, "127.0.0.1")  # the test client's own address
    assert _login_from(app, "203.0.113.99") == 429  # nor does it escape the throttle


def test_behind_a_tls_proxy_the_forwarded_scheme_is_https(tmp_path: Path) -> None:
    """x_proto: the app sees https, so Flask-WTF's strict referrer check applies to the login form."""
    app = _app(_settings(tmp_path, **{"web.proxy_hops": 1}), tmp_path)
    client = app.test_client()
    token = page_csrf(client)
    form = {"username": "clerk", "password": PASSWORD, "csrf_token": token, "next": "/"}
    https = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7"}
    no_referrer = client.post("/login", headers=https, data=form)
    assert no_referrer.status_code == 400 and b"referrer" in no_referrer.data.lower()
    elsewhere = client.post("/login", headers={**https, "Referer": "https://evil.example/login"}, data=form)
    assert elsewhere.status_code == 400
    ok = client.post("/login", headers={**https, "Referer": "https://localhost/login"}, data=form)
    assert ok.status_code == 302


# -- issue 12: look-alike names, lock-out keying, parallel attempts, busy checks, settings ----


def test_names_that_fold_together_cannot_coexist_and_any_spelling_logs_in(on: Settings) -> None:
    from service.errors import BadInput

    accounts = cheap(on)
    accounts.add("wang", PASSWORD, "viewer", ZX, now_ms())
    for twin in ("Wang", "WANG", "ｗａｎｇ", "wаng"):  # upper case, full width, a Cyrillic а
        with pytest.raises(BadInput) as exc:
            accounts.add(twin, PASSWORD, "viewer", ZX, now_ms())
        assert exc.value.field == "username", twin
    with pytest.raises(BadInput, match="Cyrillic and Latin"):
        accounts.add("аdmin", PASSWORD, "admin", "211204", now_ms())  # would pass for "admin"
    assert accounts.add("王会计", PASSWORD, "viewer", ZX, now_ms()).username == "王会计"
    assert accounts.login("Wang", PASSWORD, "10.0.0.1", now_ms()).username == "wang"
    assert accounts.login("ｗａｎｇ", PASSWORD, "10.0.0.1", now_ms()).username == "wang"
    t0 = now_ms()
    for i, spelling in enumerate(("wang", "Wang", "WANG", "ｗａｎｇ", "wAng")):  # one count for all spellings
        with pytest.raises(LoginFailed):
            accounts.login(spelling, "not the password", "10.0.0.2", t0 + i)
    with pytest.raises(LoginThrottled):
        accounts.login("wang", PASSWORD, "10.0.0.2", t0 + 10)


def test_an_older_file_with_look_alikes_keeps_them_but_takes_no_new_one(on: Settings) -> None:
    import sqlite3

    from argon2 import PasswordHasher

    from service.auth import SqliteAccounts
    from service.errors import BadInput

    path = Path(on.data_dir) / "accounts.sqlite3"
    path.parent.mkdir(parents=True)
    hashed = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(PASSWORD)
    with sqlite3.connect(path) as conn:  # the schema before names were folded
        conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, username TEXT NOT NULL UNIQUE, password_hash TEXT "
                     "NOT NULL, role TEXT NOT NULL, scope TEXT NOT NULL, disabled INTEGER NOT NULL DEFAULT 0, demo "
                     "INTEGER NOT NULL DEFAULT 0, created_ms INTEGER NOT NULL, epoch INTEGER NOT NULL DEFAULT 1)")
        conn.executemany("INSERT INTO users (username, password_hash, role, scope, created_ms) VALUES (?, ?, ?, ?, 0)",
                         [("li", hashed, "viewer", ZX), ("Li", hashed, "viewer", ZX), ("zhao", hashed, "viewer", ZX)])
    accounts = cheap(on)
    assert SqliteAccounts(path).user("Li") is not None  # opened again: the migration runs once
    assert accounts.login("Li", PASSWORD, "10.0.0.1", now_ms()).username == "Li"  # the exact name wins
    with pytest.raises(LoginFailed):
        accounts.login("LI", PASSWORD, "10.0.0.1", now_ms())  # ambiguous: no account
    assert accounts.login("ZHAO", PASSWORD, "10.0.0.1", now_ms()).username == "zhao"
    with pytest.raises(BadInput):
        accounts.add("lI", PASSWORD, "viewer", ZX, now_ms())


def test_a_stranger_locks_out_only_himself(on: Settings) -> None:
    accounts = cheap(on)
    accounts.add("clerk2", PASSWORD, "viewer", ZX, now_ms())
    t0 = now_ms()
    for i in range(PER_USER * 2):
        with pytest.raises((LoginFailed, LoginThrottled)):
            accounts.login("clerk2", "guess guess guess", "198.51.100.66", t0 + i)
    assert accounts.login("clerk2", PASSWORD, "10.0.0.1", t0 + 20).username == "clerk2"
    with pytest.raises(LoginThrottled):
        accounts.login("clerk2", PASSWORD, "198.51.100.66", t0 + 21)


def test_ipv6_clients_are_counted_per_slash_64() -> None:
    from service.auth.ratelimit import client_key

    assert client_key("2001:db8:1:2:aaaa::1") == client_key("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    assert client_key("2001:db8:1:3::1") != client_key("2001:db8:1:2::1")
    assert client_key("::ffff:203.0.113.7") == client_key("203.0.113.7") == "203.0.113.7"
    assert client_key("?") == "?"


def test_parallel_attempts_through_two_workers_are_counted_before_any_check(on: Settings) -> None:
    """Two Accounts on one file, as two web processes have: 40 parallel guesses, 5 checks."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    workers = [cheap(on), cheap(on)]
    workers[0].add("clerk3", PASSWORD, "viewer", ZX, now_ms())
    checks = 0
    lock = threading.Lock()
    for w in workers:
        verify = w.passwords.verify

        def counted(stored: str | None, password: str, verify: object = verify) -> bool:
            nonlocal checks
            with lock:
                checks += 1
            return verify(stored, password)  # type: ignore[operator]

        w.passwords.verify = counted  # type: ignore[method-assign]
    gate = threading.Barrier(40)

    def guess(i: int) -> str:
        gate.wait(timeout=30)
        try:
            workers[i % 2].login("clerk3", "guess guess guess", "10.9.9.9", now_ms())
        except (LoginFailed, LoginThrottled) as exc:
            return type(exc).__name__
        return "ok"

    with ThreadPoolExecutor(40) as pool:
        outcomes = list(pool.map(guess, range(40)))
    assert checks == outcomes.count("LoginFailed") == PER_USER
    assert outcomes.count("LoginThrottled") == 40 - PER_USER


def test_when_every_check_slot_is_taken_login_answers_503_and_counts_nothing(app: Flask) -> None:
    from service.auth.passwords import CheckSlots

    accounts = app.extensions["nongyun_auth"].accounts
    accounts.passwords.slots = CheckSlots(1, 0)  # one slot, nobody may wait for it
    client = app.test_client()
    token = page_csrf(client)
    form = {"username": "clerk", "password": PASSWORD, "csrf_token": token, "next": "/"}
    with accounts.passwords.slots.take(1):  # a check is running
        page = client.post("/login", data=form)
        as_json = client.post("/login", data=form, headers={"Accept": "application/json"})
    assert page.status_code == 503 and int(page.headers["Retry-After"]) >= 1
    assert 'id="login-error"' in page.get_data(as_text=True)
    assert as_json.status_code == 503 and as_json.get_json()["error"]["code"] == "unavailable"
    assert accounts.store.failures("client:127.0.0.1", 0) == []  # taken back: a flood locks nobody out
    assert client.post("/login", data=form).status_code == 302


def test_enabling_from_the_admin_page_revokes_the_accounts_tokens(app: Flask) -> None:
    accounts = app.extensions["nongyun_auth"].accounts
    token = accounts.create_token("clerk", "script", now_ms()).text
    admin = app.test_client()
    login(admin, "admin")
    csrf = page_csrf(admin, "/admin/users")
    assert admin.post("/admin/users/clerk/disable", data={"csrf_token": csrf}).status_code == 302
    assert admin.post("/admin/users/clerk/enable", data={"csrf_token": csrf}).status_code == 302
    bearer = {"Authorization": f"Bearer {token}"}
    assert app.test_client().get("/api/v1/regions", headers=bearer).status_code == 401
    assert all(t.revoked_ms is not None for t in accounts.store.tokens("clerk"))


def test_user_add_reads_the_password_from_stdin_and_enable_keeps_tokens_only_when_asked(on: Settings) -> None:
    env = {"NONGYUN_CONFIG": str(CONFIG), "NONGYUN_DATA_DIR": str(on.data_dir)}
    run = CliRunner()
    made = run.invoke(main, ["user", "add", "zhou", "--role", "viewer", "--scope", ZX, "--password-stdin"], env=env,
                      input=f"{PASSWORD}\n")
    assert made.exit_code == 0, made.output
    assert PASSWORD not in made.output
    twin = run.invoke(main, ["user", "add", "ZHOU", "--role", "viewer", "--scope", ZX, "--password-stdin"], env=env,
                      input=f"{PASSWORD}\n")
    assert twin.exit_code == 1 and "username" in twin.output
    accounts = cheap(on)
    first = accounts.create_token("zhou", "a", now_ms()).text
    assert run.invoke(main, ["user", "disable", "zhou"], env=env).exit_code == 0
    kept = run.invoke(main, ["user", "enable", "zhou", "--keep-tokens"], env=env)
    assert kept.exit_code == 0 and "work again" in kept.output
    assert accounts.token_account(first, now_ms()) is not None
    assert run.invoke(main, ["user", "disable", "zhou"], env=env).exit_code == 0
    revoked = run.invoke(main, ["user", "enable", "zhou"], env=env)
    assert revoked.exit_code == 0 and "revoked" in revoked.output
    assert accounts.token_account(first, now_ms()) is None
    assert "active already" in run.invoke(main, ["user", "enable", "zhou"], env=env).output


def test_a_weak_secret_key_is_a_settings_error_naming_it(tmp_path: Path) -> None:
    from service.errors import SettingsError

    for weak in ("x", "secret", "a" * 40, "abababababababababababababababab"):
        with pytest.raises(SettingsError, match=r"web\.secret_key \(NONGYUN_SECRET_KEY\)"):
            _settings(tmp_path, **{"web.secret_key": weak})
    assert _settings(tmp_path, **{"web.secret_key": "k3y-" + "0123456789abcdef" * 2}).values.web_secret_key


def test_hosts_outside_web_allowed_hosts_are_refused(tmp_path: Path) -> None:
    from service.errors import SettingsError

    app = _app(_settings(tmp_path, **{"web.allowed_hosts": "nongyun.county.example, .farm.example",
                                      "web.http": "0.0.0.0:8080"}), tmp_path)
    client = app.test_client()
    for ok in ("localhost", "nongyun.county.example", "farm.example", "a.farm.example:8080", "10.1.2.3:8080",
               "[2001:db8::1]:8080", "LOCALHOST."):
        assert client.get("/login", headers={"Host": ok}).status_code == 200, ok
    for bad in ("evil.example", "nongyun.county.example.evil.example", "xfarm.example", "localhost@evil.example",
                "a b", "0.0.0.0.evil.example"):
        resp = client.get("/login", headers={"Host": bad})
        assert resp.status_code == 400 and resp.get_json()["error"]["field"] == "Host", bad
    with pytest.raises(SettingsError, match=r"web\.allowed_hosts"):
        _settings(tmp_path, **{"web.allowed_hosts": "https://nongyun.example/"})


def test_with_auth_off_form_posts_need_the_token_and_json_posts_do_not(settings: Settings, tmp_path: Path) -> None:
    app = create_app(build(settings), SqliteStore(tmp_path / "open.sqlite3"))
    client = app.test_client()
    form = {"username": "intruder", "password": PASSWORD, "role": "admin", "scope": "211204"}
    assert client.post("/admin/users", data=form).status_code == 400
    assert client.post("/admin/users", data=form, headers={"Origin": "http://evil.example"}).status_code == 403
    assert client.post("/api/v1/alerts/1/ack", data="{}", content_type="text/plain").status_code == 400
    assert client.post("/api/v1/alerts/999999/ack", json={}).status_code == 404  # the view answers
    client.get("/admin/users")  # now the browser holds a session cookie: JSON still needs no token
    assert client.post("/api/v1/alerts/999999/ack", json={}).status_code == 404
    assert client.post("/api/v1/alerts/999999/ack", json={}, headers={"Origin": "null"}).status_code == 403
    assert app.extensions["nongyun_auth"].accounts.store.users() == []
