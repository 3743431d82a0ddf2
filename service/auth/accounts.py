"""Staff accounts as the CLI and the web app use them: create, log in, disable, enable, passwords, API tokens.

Every rule lives here (name and password rules, scopes that exist in the region tree, the
login throttle, token format and expiry, sessions), so ``nongyun user add`` and the admin page cannot
disagree. Secrets leave this module once: a new token's or session's text is returned to be shown
or set as a cookie, never kept.

A login runs in this order, cheapest refusal first: the throttle counts the attempt (refusing it,
429, when a count is full), then the password check waits for one of the bounded slots (refusing
it, 503, when none frees up; the attempt is then taken back), then the attempt's outcome settles
its count. Each check leaves one log line (name, address, outcome), which the throttle bounds too.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import re
import secrets
from dataclasses import dataclass

from ..errors import BadInput, NongyunError, NotFound
from ..regions import RegionTree
from ..times import now_ms
from .model import ROLES, Account, Principal, Role, TokenInfo
from .names import mixed_scripts
from .passwords import LOGIN_WAIT_S, PasswordChecksBusy, Passwords, check_strength
from .ratelimit import LoginLimiter, LoginThrottledError
from .store import AccountStore

log = logging.getLogger(__name__)

USERNAME = re.compile(r"^[\w.@-]{1,64}$")
TOKEN = re.compile(r"^nyt_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")
DAY_MS = 86_400_000
TOKEN_DAYS_DEFAULT = 90
TOKEN_DAYS_MAX = 366
SESSION_HOURS = 12


class LoginFailed(NongyunError):
    """Wrong name or password, or a disabled account: one message for all, on purpose."""


class LoginThrottled(NongyunError):
    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"too many failed logins; try again in {retry_after_s} s")
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class NewToken:
    text: str  # shown once
    info: TokenInfo


def token_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class Accounts:
    def __init__(self, store: AccountStore, tree: RegionTree, passwords: Passwords | None = None,
                 limiter: LoginLimiter | None = None) -> None:
        self.store = store
        self.tree = tree
        self.passwords = passwords or Passwords()
        self.limiter = limiter or LoginLimiter(store)

    # -- accounts -------------------------------------------------------------------------------

    def add(self, username: str, password: str, role: str, scope: str, now: int, demo: bool = False) -> Account:
        if not USERNAME.fullmatch(username):
            raise BadInput("username: 1 to 64 letters, digits, '.', '@', '_' or '-'", "username")
        mixed = mixed_scripts(username)
        if mixed:
            raise BadInput(f"username: mixes {' and '.join(s.title() for s in mixed)} letters, "
                           "which can pass for another name", "username")
        if role not in ROLES:
            raise BadInput(f"role: one of {', '.join(ROLES)}", "role")
        if self.tree.find(scope) is None:
            raise BadInput(f"scope: {scope[:20]!r} is not a region code of the tree", "scope")
        try:
            check_strength(password)
        except ValueError as exc:
            raise BadInput(f"password: {exc}", "password") from None
        return self.store.add_user(username, self.passwords.hash(password), role_of(role), scope, now, demo)

    def get(self, username: str) -> Account:
        found = self.store.user(username)
        if found is None:
            raise NotFound(f"no account {username!r}")
        return found[0]

    def login(self, username: str, password: str, client: str, now: int) -> Account:
        """The account; LoginThrottled before any check; PasswordChecksBusy when no check slot
        frees up (not counted); LoginFailed (counted). ``username`` may be any spelling that folds
        to the account's name (names.py)."""
        try:
            attempt = self.limiter.reserve(username, client, now)
        except LoginThrottledError as exc:
            raise LoginThrottled(max(1, -(-exc.wait_ms // 1000))) from None
        try:
            found = self.store.user_for_login(username) if USERNAME.fullmatch(username) else None
            ok = self.passwords.verify(found[1] if found else None, password)
        except PasswordChecksBusy:
            self.limiter.cancelled(attempt)
            raise
        if found is None or not ok or found[0].disabled:
            log.info("password check for %r from %s: failed", username, client)
            raise LoginFailed("wrong user name or password")
        account, stored = found
        log.info("password check for %r from %s: ok", account.username, client)
        self.limiter.succeeded(attempt)
        if self.passwords.needs_rehash(stored):
            with contextlib.suppress(PasswordChecksBusy):  # the stronger hash can wait for the next login
                self.store.set_password_hash(account.username, self.passwords.hash(password, LOGIN_WAIT_S))
        return account

    def set_disabled(self, username: str, disabled: bool, *, keep_tokens: bool = False,
                     now: int | None = None) -> Account:
        """Disable: its sessions end and its tokens stop at once. Enable again: it may log in, its
        old sessions stay ended, and its API tokens are revoked unless ``keep_tokens``. Tokens
        outlive a disabling only as records: whoever copied one while the account was trusted
        must not get it back by the account's return, so reviving them is the admin's explicit choice."""
        revoke_at = None if keep_tokens or disabled else (now if now is not None else now_ms())
        return self.store.set_disabled(username, disabled, revoke_at)

    def set_password(self, username: str, password: str) -> Account:
        """A new password (same rules as ``add``). Every session of the account ends, since whoever
        held the old password may hold one of them too; API tokens are credentials of their own and
        stay (revoke them with ``nongyun token revoke``)."""
        self.get(username)  # NotFound before the password rules, so a typo in the name says so
        try:
            check_strength(password)
        except ValueError as exc:
            raise BadInput(f"password: {exc}", "password") from None
        return self.store.set_password_hash(username, self.passwords.hash(password), end_sessions=True)

    def change_password(self, username: str, current: str, new: str, client: str, now: int) -> Account:
        """A logged-in user's own change: the current password is checked like a login (throttled and
        counted, so a borrowed session is no way to guess it), then ``set_password``, which ends
        every session of the account (the caller opens a fresh one for the browser that asked)."""
        self.login(username, current, client, now)
        return self.set_password(username, new)

    # -- sessions -------------------------------------------------------------------------------

    def open_session(self, account: Account, now: int, hours: int = SESSION_HOURS) -> str:
        """A new session id for the cookie; only its SHA-256 is stored."""
        sid = secrets.token_urlsafe(32)
        self.store.add_session(token_digest(sid), account.id, now, now + hours * 3_600_000)
        return sid

    def session_account(self, sid: str, now: int) -> Account | None:
        """The account of a session id while the session lives (not logged out, expired, or ended
        by a disabling or a new password)."""
        if not 20 <= len(sid) <= 100:
            return None
        return self.store.session_user(token_digest(sid), now)

    def end_session(self, sid: str) -> None:
        self.store.remove_session(token_digest(sid))

    # -- API tokens -----------------------------------------------------------------------------

    def create_token(self, username: str, name: str, now: int, days: int = TOKEN_DAYS_DEFAULT) -> NewToken:
        if not 1 <= days <= TOKEN_DAYS_MAX:
            raise BadInput(f"days: 1 to {TOKEN_DAYS_MAX}", "days")
        account = self.get(username)
        if account.disabled:
            raise BadInput(f"account {username!r} is disabled", "username")
        token_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
        info = self.store.add_token(token_id, account.id, name[:100], token_digest(secret), now, now + days * DAY_MS)
        return NewToken(f"nyt_{token_id}_{secret}", info)

    def token_account(self, text: str, now: int) -> Account | None:
        """The account a bearer token acts for, or None (malformed, unknown, wrong, revoked, expired)."""
        m = TOKEN.fullmatch(text)
        if m is None:
            return None
        found = self.store.token(m.group(1))
        if found is None:
            return None
        info, digest = found
        if not hmac.compare_digest(digest, token_digest(m.group(2))) or not info.active(now):
            return None
        account = self.store.user_by_id(info.user_id)
        return None if account is None or account.disabled else account

    def revoke_token(self, token_id: str, now: int) -> TokenInfo:
        m = TOKEN.fullmatch(token_id)
        return self.store.revoke_token(m.group(1) if m else token_id, now)


def role_of(text: str) -> Role:
    for r in ROLES:
        if r == text:
            return r
    raise BadInput(f"role: one of {', '.join(ROLES)}", "role")


def principal(account: Account, via: str) -> Principal:
    return Principal(account.username, account.role, account.scope, "token" if via == "token" else "session")
