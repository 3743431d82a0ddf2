"""Who may see what on the web: login and logout, session cookies, bearer tokens, CSRF, scopes.

Every request is checked once, before its view (``_authenticate``):

1. its Host header names this site (``web.allowed_hosts``), else 400. A foreign page that points
   a name of its own at this server's address (DNS rebinding) gets its requests answered as if it
   were this site, cookies and all, unless the app refuses names it does not know. IP addresses
   and loopback names are always fine: rebinding needs a name the attacker controls.
2. who is calling: a bearer token (``Authorization: Bearer nyt_...``, for scripts) or the session
   cookie set by the login page. The cookie holds only a session id; the session itself is a row
   of the accounts database, so logout, disabling the account and a new password end it on every
   web process at once, and a copied cookie dies with it.
3. a request that changes something and is not bearer-borne comes from this site: no foreign
   ``Origin`` (403), and a CSRF token (Flask-WTF's CSRFProtect: a hidden field in forms, the
   ``X-CSRFToken`` header from the dashboards' script; 400 without). Bearer requests need neither,
   since a browser never adds that header by itself.

With ``web.auth = off`` everybody is the district's admin and nothing asks for a login, which is
exactly why steps 1 and 3 stay: any page the operator opens could otherwise post to
``/admin/users``. There the cookie carries no authority, so what matters is whether a foreign page
can make the request at all: forms, multipart and plain-text bodies (and empty ones) it can send
unasked, so they need the token; a JSON body it can send only after a CORS preflight this app
never grants, so the dashboards' JSON posts need none (their pages carry no token then).
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_wtf.csrf import CSRFProtect
from werkzeug.wrappers import Response as BaseResponse

from ..auth import (
    Accounts,
    LoginFailed,
    LoginThrottled,
    PasswordChecksBusy,
    Principal,
    Role,
    Scoped,
    narrow,
    open_accounts,
)
from ..auth.accounts import SESSION_HOURS
from ..auth.accounts import principal as principal_of
from ..auth.demo import DEMO_ACCOUNTS, DEMO_PASSWORD
from ..auth.passwords import MAX_LENGTH, MIN_LENGTH
from ..context import Context
from ..errors import BadInput, Forbidden
from ..regions import Region
from ..settings import Settings
from ..times import now_ms
from .errors import error_response
from .state import state

log = logging.getLogger(__name__)
EXTENSION = "nongyun_auth"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Reachable without logging in: the login page itself, static assets, the API's own description.
PUBLIC = frozenset({"auth.login", "auth.logout", "pages.static", "pages.echarts", "api_v1.openapi_get", "static",
                    "metrics.metrics"})  # metrics.py asks for an admin itself: a scraper gets 401, not the login page
SECRET_FILE = "secret_key"
SESSION_COOKIE = "nongyun_session"

csrf = CSRFProtect()
bp = Blueprint("auth", __name__, template_folder="templates")

TEXT: dict[str, tuple[str, str]] = {
    "title": ("登录", "Log in"),
    "username": ("用户名", "User name"),
    "password": ("密码", "Password"),
    "submit": ("登录", "Log in"),
    "logout": ("退出", "Log out"),
    "failed": ("用户名或密码错误", "Wrong user name or password"),
    "throttled": ("登录失败次数过多，请 {s} 秒后再试", "Too many failed logins; try again in {s} s"),
    "busy": ("同时登录的人太多，请 {s} 秒后再试", "Too many logins at once; try again in {s} s"),
    "demo_banner": ("这是演示系统：数据为模拟数据，以下演示账号的密码均为",
                    "This is a demo: the data is simulated; every demo account's password is"),
    "demo_accounts": ("演示账号", "Demo accounts"),
    "users": ("账号管理", "Accounts"),
    "role": ("角色", "Role"),
    "scope": ("范围", "Scope"),
    "state": ("状态", "State"),
    "active": ("启用", "active"),
    "disabled": ("已停用", "disabled"),
    "disable": ("停用", "Disable"),
    "add_user": ("新建账号", "New account"),
    "create": ("创建", "Create"),
    "enable": ("启用", "Enable"),
    "enable_note": ("重新启用后可以登录；该账号原有的 API 令牌作废", "It may log in again; its API tokens are revoked"),
    "password_title": ("修改密码", "Change password"),
    "current": ("当前密码", "Current password"),
    "new": ("新密码（至少 10 个字符）", "New password (10 characters or more)"),
    "confirm": ("再次输入新密码", "New password again"),
    "change": ("修改", "Change"),
    "mismatch": ("两次输入的新密码不一致", "The two new passwords differ"),
    "wrong_current": ("当前密码错误", "The current password is wrong"),
    "too_short": ("新密码需要 {n} 到 {m} 个字符", "A new password has {n} to {m} characters"),
    "changed": ("密码已修改；其他设备上的登录已退出", "Password changed; your other sessions have ended"),
    "back": ("返回", "Back"),
    # the accounts page: confirmation, never oneself, the scope picked from the region tree, the way back
    "back_dashboard": ("返回看板", "Back to the dashboards"),
    "registry": ("设备与地块管理", "Devices and plots"),
    "confirm_disable": ("确定停用账号 {u}？停用后该账号立即退出登录，其 API 令牌同时失效。",
                        "Disable the account {u}? It is logged out at once and its API tokens stop working."),
    "self_disable": ("不能停用自己正在使用的账号：请由另一位管理员操作。",
                     "You cannot disable the account you are using: ask another admin."),
    "you": ("（当前账号）", "(you)"),
    "role_viewer": ("查看", "viewer"), "role_editor": ("录入", "editor"), "role_admin": ("管理员", "admin"),
    "err_username": ("用户名需 1–64 个字母、数字或 . @ _ -，且不能与已有账号相同或形近",
                     "A user name has 1–64 letters, digits, '.', '@', '_' or '-', and differs from every "
                     "existing name"),
    "err_password": ("密码太弱：至少 10 个字符，且不能是常见密码", "The password is too weak: 10 characters or more, "
                     "not a common one"),
    "err_role": ("请选择角色", "Choose a role"),
    "err_scope": ("请从列表中选择您管辖范围内的地区", "Pick a region of your scope from the list"),
    "err_other": ("账号未能创建，请检查填写内容", "The account was not created: check the form"),
}


HOST_HEADER = re.compile(r"^(?:(?P<name>[A-Za-z0-9_.-]+)|\[(?P<ip6>[0-9A-Fa-f:.]+)\])(?::[0-9]{1,5})?$")
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


@dataclass(frozen=True)
class HostRule:
    """Which Host headers name this site: ``web.allowed_hosts``, loopback names, web.http's host,
    and any IP address literal."""

    names: frozenset[str]
    suffixes: tuple[str, ...]  # ".example.org": it and its subdomains
    any: bool

    @classmethod
    def of(cls, settings: Settings) -> HostRule:
        listed = [n.strip().lower().rstrip(".") for n in settings.values.web_allowed_hosts.split(",")]
        names = set(LOOPBACK_NAMES) | {n for n in listed if n and not n.startswith(".") and n != "*"}
        names.add(settings.http[0].lower())
        return cls(frozenset(names), tuple(n for n in listed if n.startswith(".")), "*" in listed)

    def allows(self, header: str) -> bool:
        m = HOST_HEADER.fullmatch(header)
        if m is None:
            return False
        if self.any or m.group("ip6"):
            return True
        name = m.group("name").lower().rstrip(".")
        try:
            ipaddress.IPv4Address(name)
            return True
        except ValueError:
            pass
        return name in self.names or any(name == s[1:] or name.endswith(s) for s in self.suffixes)


@dataclass(frozen=True)
class AuthState:
    required: bool
    accounts: Accounts
    open_principal: Principal
    hosts: HostRule


def auth_state() -> AuthState:
    found = current_app.extensions[EXTENSION]
    assert isinstance(found, AuthState)
    return found


def secret_key(settings: Settings) -> str:
    """The configured key, or one generated once into the data folder and shared by every worker
    (O_EXCL: when several workers start at once, one writes and the others read)."""
    if settings.values.web_secret_key:
        return settings.values.web_secret_key
    path = Path(settings.data_dir) / SECRET_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):  # another worker is writing it right now
            text = path.read_text(encoding="ascii").strip()
            if text:
                return text
            os.sched_yield()
        raise RuntimeError(f"{path} is empty: delete it and start again") from None
    with os.fdopen(fd, "w", encoding="ascii") as f:
        key = secrets.token_urlsafe(48)
        f.write(key)
    return key


def init_app(app: Flask, ctx: Context) -> None:
    settings = ctx.settings
    required = settings.values.web_auth == "required"
    app.secret_key = secret_key(settings)
    app.config.update(
        SESSION_COOKIE_NAME=SESSION_COOKIE,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.values.web_cookie_secure,
        PERMANENT_SESSION_LIFETIME=timedelta(hours=SESSION_HOURS),
        WTF_CSRF_CHECK_DEFAULT=False,  # checked in _authenticate: cookie-borne requests only
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the session
    )
    csrf.init_app(app)
    accounts = open_accounts(settings.data_dir, ctx.tree, settings.values.web_password_checks)
    app.extensions[EXTENSION] = AuthState(required, accounts, Principal("", "admin", ctx.tree.district.code, "open"),
                                          HostRule.of(settings))
    if required and not app.extensions[EXTENSION].accounts.store.users():
        log.warning("web.auth is required but there are no accounts yet: create one with "
                    "`nongyun user add NAME --role admin --scope %s`", ctx.tree.district.code)
    app.before_request(_authenticate)
    app.context_processor(_template_globals)
    app.register_blueprint(bp)


# -- per request ------------------------------------------------------------------------------


def _unauthorized(message: str) -> Response:
    return error_response(401, message, WWW_Authenticate='Bearer realm="nongyun"')


def _from_session(accounts: Accounts) -> Principal | None:
    sid = session.get("sid")
    if not isinstance(sid, str):
        return None
    account = accounts.session_account(sid, now_ms())
    return principal_of(account, "session") if account is not None else None


def _foreign_origin() -> str | None:
    """The ``Origin`` of a request sent by another site's page, or None. Browsers send it with
    every POST; ``null`` (sandboxed frames, local files) is nobody's site, so it is foreign too."""
    origin = request.headers.get("Origin")
    if origin is None:
        return None
    try:
        netloc = urlsplit(origin).netloc.lower()
    except ValueError:
        return origin
    return None if netloc and netloc == request.host.lower() else origin


def _authenticate() -> BaseResponse | None:
    st = auth_state()
    if not st.hosts.allows(request.host):
        return error_response(400, f"this server does not answer to the host {request.host[:100]!r}; "
                                   "add its name to web.allowed_hosts (NONGYUN_ALLOWED_HOSTS)", "Host")
    who: Principal | None = None
    header = request.headers.get("Authorization")
    if not st.required:
        who = st.open_principal
    elif header is not None:
        scheme, _, credential = header.partition(" ")
        account = st.accounts.token_account(credential.strip(), now_ms()) if scheme.lower() == "bearer" else None
        if account is None:
            return _unauthorized("invalid, expired or revoked API token (Authorization: Bearer nyt_...)")
        who = principal_of(account, "token")
    elif session:
        who = _from_session(st.accounts)
        if who is None and ("sid" in session or "uid" in session):  # ended, expired, or from before sessions were rows
            session.clear()
    g.principal = who
    public = request.endpoint is None or request.endpoint in PUBLIC  # None: routing answers 404/405
    api = request.path.startswith("/api/")
    writes = request.method not in SAFE_METHODS and request.endpoint is not None
    if writes and (who is None or who.via != "token"):
        foreign = _foreign_origin()
        if foreign is not None:
            return error_response(403, f"cross-site request refused: Origin {foreign[:100]!r} is not this site")
        # auth off: see the module docstring; required: a session, or an anonymous form (the login)
        needs_token = (who is not None or not api) if st.required else not request.is_json
        if needs_token:
            csrf.protect()  # raises CSRFError (400) without a valid token
    if st.required and who is None and not public:
        if api:
            return _unauthorized("log in or send an API token (Authorization: Bearer nyt_...)")
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
    return None


def principal() -> Principal:
    found = g.get("principal")
    if not isinstance(found, Principal):
        raise Forbidden("not logged in")
    return found


def require(role: Role) -> Principal:
    who = principal()
    if not who.may(role):
        raise Forbidden(f"this needs the {role} role; {who.username or 'you'} are {who.role}")
    return who


def scoped(code: str | None) -> Scoped:
    """The part of region ``code`` (default: the district) the caller may see; 403 when none."""
    tree = state().ctx.tree
    region = tree.get(code) if code is not None else tree.district
    return narrow(tree, principal().scope, region)


def inside(code: str) -> None:
    """403 unless ``code`` (a village or device's village) lies inside the caller's scope."""
    scope = principal().scope
    if not code.startswith(scope):
        raise Forbidden(f"{code} lies outside your scope {scope}")


def _lang() -> int:
    return 1 if request.args.get("lang") == "en" or request.cookies.get("nongyun_lang") == "en" else 0


def _template_globals() -> dict[str, Any]:
    st = current_app.extensions.get(EXTENSION)
    who = g.get("principal")
    return {"auth_required": bool(st and st.required), "auth_user": who if isinstance(who, Principal) else None}


# -- pages ------------------------------------------------------------------------------------


def _safe_next(target: str | None) -> str:
    """Only a path on this site: ``//evil.example`` and ``https://...`` become the home page."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else "/"


def _wants_json() -> bool:
    return request.is_json or request.accept_mimetypes.best == "application/json"


def _login_refused(status: int, message: str, username: str, retry_after_s: int | None = None) -> Response:
    """The login form's own error page for browsers, the API's JSON error for JSON callers."""
    headers = {"Retry_After": str(retry_after_s)} if retry_after_s is not None else {}
    if _wants_json():
        return error_response(status, message, **headers)
    return _login_page(status, message, username, **headers)


def _login_page(status: int = 200, error: str = "", username: str = "", **headers: str) -> Response:
    st = auth_state()
    lang = _lang()
    t = {k: v[lang] for k, v in TEXT.items()}
    notes = {d.username: (d.note_zh, d.note_en)[lang] for d in DEMO_ACCOUNTS}
    demo = [{"username": a.username, "note": notes.get(a.username, f"{a.role} · {a.scope}")}
            for a in st.accounts.store.users() if a.demo and not a.disabled]
    html = render_template("auth/login.html", t=t, lang="en" if lang else "zh", error=error, username=username,
                           next=_safe_next(request.values.get("next")), demo=demo, demo_password=DEMO_PASSWORD)
    resp = Response(html, status=status, mimetype="text/html")
    for name, value in headers.items():
        resp.headers[name.replace("_", "-")] = value
    return resp


@bp.route("/login", methods=["GET", "POST"])
def login() -> BaseResponse:
    st = auth_state()
    if not st.required:
        return redirect("/")
    if request.method == "GET":
        return _login_page()
    lang = _lang()
    username = request.form.get("username", "").strip()[:64]
    password = request.form.get("password", "")
    try:
        account = st.accounts.login(username, password, request.remote_addr or "?", now_ms())
    except LoginThrottled as exc:
        return _login_refused(429, TEXT["throttled"][lang].format(s=exc.retry_after_s), username, exc.retry_after_s)
    except PasswordChecksBusy as exc:
        return _login_refused(503, TEXT["busy"][lang].format(s=exc.retry_after_s), username, exc.retry_after_s)
    except LoginFailed:
        return _login_refused(401, TEXT["failed"][lang], username)
    _start_session(st.accounts.open_session(account, now_ms()))
    return redirect(_safe_next(request.form.get("next")))


def _start_session(sid: str) -> None:
    """A fresh cookie (and CSRF token) for a new session id: no fixation."""
    session.clear()
    session.permanent = True
    session["sid"] = sid


@bp.post("/logout")
def logout() -> BaseResponse:
    """The session row goes, so the cookie is worthless even where a copy of it survives."""
    sid = session.get("sid")
    if isinstance(sid, str):
        auth_state().accounts.end_session(sid)
    session.clear()
    return redirect(url_for("auth.login"))


@bp.get("/admin/users")
def users() -> Response:
    who = require_page("admin")
    return _users_page(who)


def require_page(role: Role) -> Principal:
    """``require`` for HTML pages: a plain 403 page rather than the API's JSON."""
    try:
        return require(role)
    except Forbidden:
        abort(403)


INDENT = "\u3000"  # an ideographic space: a village stands under its township in the list


def _scope_choices(scope: str, lang: int) -> list[dict[str, str]]:
    """The regions an admin may give an account, in tree order: their own scope and everything
    under it, each with its name, so nobody has to type a statistical code."""
    out: list[dict[str, str]] = []

    def walk(node: Region, depth: int) -> None:
        name = node.name_en if lang and node.name_en else node.name
        out.append({"code": node.code, "label": f"{INDENT * depth}{name} {node.code}", "level": node.level})
        for child in sorted(node.children, key=lambda c: c.code):
            walk(child, depth + 1)

    top = state().ctx.tree.find(scope)
    if top is not None:
        walk(top, 0)
    return out


def _users_page(who: Principal, status: int = 200, error: str = "", form: dict[str, str] | None = None) -> Response:
    """``form``: what the admin typed, given back after a refusal rather than a blank form."""
    st = auth_state()
    lang = _lang()
    t = {k: v[lang] for k, v in TEXT.items()}
    tree = state().ctx.tree
    names = {r.code: r.name for r in tree}
    rows = [{"username": a.username, "role": a.role, "scope": a.scope, "scope_name": names.get(a.scope, ""),
             "disabled": a.disabled, "self": a.username == who.username}
            for a in st.accounts.store.users() if a.scope.startswith(who.scope)]
    html = render_template("auth/users.html", t=t, lang="en" if lang else "zh", rows=rows, error=error,
                           scope=who.scope, scope_name=names.get(who.scope, ""),
                           scopes=_scope_choices(who.scope, lang), form=form or {"scope": who.scope},
                           roles=("viewer", "editor", "admin"))
    return Response(html, status=status, mimetype="text/html")


# the add form's field a refusal names → the page's own words for it (the English detail goes to the log)
ADD_ERRORS = {"username": "err_username", "password": "err_password", "role": "err_role", "scope": "err_scope"}


@bp.post("/admin/users")
def users_add() -> BaseResponse:
    who = require_page("admin")
    st = auth_state()
    form = {k: request.form.get(k, "").strip() for k in ("username", "role", "scope")}
    scope = form["scope"]
    try:
        if not scope.startswith(who.scope):
            raise BadInput(f"scope: {scope[:20]!r} lies outside your scope {who.scope}", "scope")
        st.accounts.add(form["username"], request.form.get("password", ""), form["role"], scope, now_ms())
    except BadInput as exc:
        log.info("account form refused: %s", exc)
        return _users_page(who, 400, TEXT[ADD_ERRORS.get(exc.field or "", "err_other")][_lang()], form)
    return redirect(url_for("auth.users"))


def _not_yourself(who: Principal, username: str, disable: bool) -> str | None:
    """Why an admin may not do this to the account they are using (a TEXT key), or None: disabling it
    would lock them out at once, with nobody left to undo it from this page. (The page changes no
    account's role, so nobody can demote themselves here either.)"""
    if disable and who.username and username == who.username:
        return "self_disable"
    return None


def _set_disabled(username: str, disabled: bool) -> BaseResponse:
    """An admin disables or enables an account inside their scope; one outside it does not exist.
    Enabling again revokes the account's API tokens (accounts.py says why); only ``nongyun user
    enable --keep-tokens`` keeps them, a choice made at the server, not by a click. Never one's own
    account: the page offers no such button, and a forged request gets a 400 in the page's language."""
    who = require_page("admin")
    st = auth_state()
    found = st.accounts.store.user(username)
    if found is None or not found[0].scope.startswith(who.scope):
        abort(404)
    refused = _not_yourself(who, found[0].username, disabled)
    if refused:
        return _users_page(who, 400, TEXT[refused][_lang()])
    st.accounts.set_disabled(username, disabled)
    return redirect(url_for("auth.users"))


@bp.post("/admin/users/<username>/disable")
def users_disable(username: str) -> BaseResponse:
    return _set_disabled(username, True)


@bp.post("/admin/users/<username>/enable")
def users_enable(username: str) -> BaseResponse:
    return _set_disabled(username, False)


# -- one's own password -----------------------------------------------------------------------


def _password_page(status: int = 200, error: str = "", done: bool = False, **headers: str) -> Response:
    lang = _lang()
    t = {k: v[lang] for k, v in TEXT.items()}
    who = g.get("principal")
    html = render_template("auth/password.html", t=t, lang="en" if lang else "zh", error=error, done=done,
                           username=who.username if isinstance(who, Principal) else "",
                           min_length=MIN_LENGTH, max_length=MAX_LENGTH)
    resp = Response(html, status=status, mimetype="text/html")
    for name, value in headers.items():
        resp.headers[name.replace("_", "-")] = value
    return resp


def _own_account() -> Principal:
    """The logged-in caller; 404 when there is no account to change (``web.auth = off``)."""
    who = principal()
    if who.via == "open" or not who.username:
        abort(404)
    return who


@bp.get("/account/password")
def password() -> Response:
    _own_account()
    return _password_page(done=request.args.get("done") == "1")


@bp.post("/account/password")
def password_change() -> BaseResponse:
    """CSRF is checked in ``_authenticate`` (a cookie-borne POST). The current password is checked
    like a login; afterwards every session of the account has ended and this browser has a new one."""
    who = _own_account()
    st = auth_state()
    lang = _lang()
    current = request.form.get("current", "")
    new = request.form.get("new", "")
    if new != request.form.get("confirm", ""):
        return _password_page(400, TEXT["mismatch"][lang])
    if not MIN_LENGTH <= len(new) <= MAX_LENGTH:
        return _password_page(400, TEXT["too_short"][lang].format(n=MIN_LENGTH, m=MAX_LENGTH))
    try:
        account = st.accounts.change_password(who.username, current, new, request.remote_addr or "?", now_ms())
    except LoginThrottled as exc:
        return _password_page(429, TEXT["throttled"][lang].format(s=exc.retry_after_s),
                              Retry_After=str(exc.retry_after_s))
    except PasswordChecksBusy as exc:
        return _password_page(503, TEXT["busy"][lang].format(s=exc.retry_after_s),
                              Retry_After=str(exc.retry_after_s))
    except LoginFailed:
        return _password_page(400, TEXT["wrong_current"][lang])
    if who.via == "session":  # every session ended with the change: this browser gets a new one
        _start_session(st.accounts.open_session(account, now_ms()))
    return redirect(url_for("auth.password", done=1))
