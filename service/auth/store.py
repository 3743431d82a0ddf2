"""Where accounts, API tokens, failed logins and device credentials are kept.

``AccountStore`` is the small interface the rest of the code uses; ``SqliteAccounts`` keeps them in
``{data_dir}/accounts.sqlite3``. That file is the deployment's state for both store backends: the
web, jobs and CLI processes share the data volume, accounts change rarely (the CLI or an admin
writes them), and failed logins are short rows that expire. WAL mode lets gunicorn's workers read
while one writes. Secrets are never stored: password hashes (Argon2), SHA-256 of API tokens (they
are 256 random bits, so a slow hash adds nothing) and the Mosquitto PBKDF2 hashes of devices.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol, cast

from ..errors import BadInput, NotFound, StoreUnavailable
from .model import Account, Role, TokenInfo

FILENAME = "accounts.sqlite3"

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('viewer', 'editor', 'admin')),
    scope TEXT NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0,
    demo INTEGER NOT NULL DEFAULT 0,
    created_ms INTEGER NOT NULL,
    epoch INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE IF NOT EXISTS tokens (
    id TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id),
    name TEXT NOT NULL,
    secret_sha256 TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL,
    revoked_ms INTEGER
);
CREATE TABLE IF NOT EXISTS login_failures (key TEXT NOT NULL, ts INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS login_failures_key ON login_failures (key, ts);
CREATE TABLE IF NOT EXISTS device_credentials (
    device TEXT PRIMARY KEY,
    mosquitto_hash TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);
"""

USER_COLUMNS = "id, username, role, scope, disabled, demo, created_ms, epoch"
TOKEN_COLUMNS = "t.id, t.user_id, u.username, t.name, t.created_ms, t.expires_ms, t.revoked_ms"


class AccountStore(Protocol):
    def add_user(self, username: str, password_hash: str, role: Role, scope: str, now: int,
                 demo: bool = False) -> Account: ...
    def user(self, username: str) -> tuple[Account, str] | None: ...
    def user_by_id(self, user_id: int) -> Account | None: ...
    def users(self) -> list[Account]: ...
    def set_disabled(self, username: str, disabled: bool) -> Account: ...
    def set_password_hash(self, username: str, password_hash: str, end_sessions: bool = False) -> Account: ...
    def add_token(self, token_id: str, user_id: int, name: str, secret_sha256: str, now: int,
                  expires_ms: int) -> TokenInfo: ...
    def token(self, token_id: str) -> tuple[TokenInfo, str] | None: ...
    def tokens(self, username: str | None = None) -> list[TokenInfo]: ...
    def revoke_token(self, token_id: str, now: int) -> TokenInfo: ...
    def add_failure(self, keys: list[str], now: int, keep_after: int) -> None: ...
    def failures(self, key: str, since: int) -> list[int]: ...
    def clear_failures(self, key: str) -> None: ...
    def device_credentials(self) -> dict[str, str]: ...
    def set_device_credential(self, device: str, mosquitto_hash: str, now: int) -> None: ...
    def remove_device_credential(self, device: str) -> None: ...


def _account(row: tuple[object, ...]) -> Account:
    uid, username, role, scope, disabled, demo, created, epoch = row
    return Account(int(cast(int, uid)), str(username), cast(Role, role), str(scope), bool(disabled), bool(demo),
                   int(cast(int, created)), int(cast(int, epoch)))


def _token(row: tuple[object, ...]) -> TokenInfo:
    tid, uid, username, name, created, expires, revoked = row
    return TokenInfo(str(tid), int(cast(int, uid)), str(username), str(name), int(cast(int, created)),
                     int(cast(int, expires)), None if revoked is None else int(cast(int, revoked)))


class SqliteAccounts:
    """One short-lived connection per call: cheap for SQLite, and safe across threads and forks."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._tx() as conn:
            conn.executescript(SCHEMA)
        path.chmod(0o600)  # hashes only, but nobody else on the host needs them

    @classmethod
    def in_dir(cls, data_dir: Path) -> SqliteAccounts:
        return cls(Path(data_dir) / FILENAME)

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        try:
            conn = sqlite3.connect(self.path, timeout=10)
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"accounts: cannot open {self.path}: {exc}") from exc
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA foreign_keys=ON")
            with conn:
                yield conn
        except sqlite3.OperationalError as exc:
            raise StoreUnavailable(f"accounts: {exc}", retry_after_s=1) from exc
        finally:
            conn.close()

    # -- users ----------------------------------------------------------------------------------

    def add_user(self, username: str, password_hash: str, role: Role, scope: str, now: int,
                 demo: bool = False) -> Account:
        with self._tx() as conn:
            try:
                cur = conn.execute("INSERT INTO users (username, password_hash, role, scope, demo, created_ms) "
                                   "VALUES (?, ?, ?, ?, ?, ?)", (username, password_hash, role, scope, int(demo), now))
            except sqlite3.IntegrityError:
                raise BadInput(f"username: {username!r} is taken", "username") from None
            row = conn.execute(f"SELECT {USER_COLUMNS} FROM users WHERE id = ?", (cur.lastrowid,)).fetchone()
        return _account(row)

    def user(self, username: str) -> tuple[Account, str] | None:
        with self._tx() as conn:
            row = conn.execute(f"SELECT {USER_COLUMNS}, password_hash FROM users WHERE username = ?",
                               (username,)).fetchone()
        return None if row is None else (_account(row[:-1]), str(row[-1]))

    def user_by_id(self, user_id: int) -> Account | None:
        with self._tx() as conn:
            row = conn.execute(f"SELECT {USER_COLUMNS} FROM users WHERE id = ?", (user_id,)).fetchone()
        return None if row is None else _account(row)

    def users(self) -> list[Account]:
        with self._tx() as conn:
            rows = conn.execute(f"SELECT {USER_COLUMNS} FROM users ORDER BY scope, username").fetchall()
        return [_account(r) for r in rows]

    def set_disabled(self, username: str, disabled: bool) -> Account:
        with self._tx() as conn:
            # the epoch moves only with the state: enabling an active account leaves its sessions alone
            cur = conn.execute("UPDATE users SET epoch = epoch + (disabled != ?), disabled = ? WHERE username = ?",
                               (int(disabled), int(disabled), username))
            if cur.rowcount == 0:
                raise NotFound(f"no account {username!r}")
            row = conn.execute(f"SELECT {USER_COLUMNS} FROM users WHERE username = ?", (username,)).fetchone()
        return _account(row)

    def set_password_hash(self, username: str, password_hash: str, end_sessions: bool = False) -> Account:
        """``end_sessions`` bumps the epoch (a new password); a rehash at login keeps it."""
        bump = ", epoch = epoch + 1" if end_sessions else ""
        with self._tx() as conn:
            cur = conn.execute(f"UPDATE users SET password_hash = ?{bump} WHERE username = ?",
                               (password_hash, username))
            if cur.rowcount == 0:
                raise NotFound(f"no account {username!r}")
            row = conn.execute(f"SELECT {USER_COLUMNS} FROM users WHERE username = ?", (username,)).fetchone()
        return _account(row)

    # -- API tokens -----------------------------------------------------------------------------

    def add_token(self, token_id: str, user_id: int, name: str, secret_sha256: str, now: int,
                  expires_ms: int) -> TokenInfo:
        with self._tx() as conn:
            conn.execute("INSERT INTO tokens (id, user_id, name, secret_sha256, created_ms, expires_ms) "
                         "VALUES (?, ?, ?, ?, ?, ?)", (token_id, user_id, name, secret_sha256, now, expires_ms))
        found = self.token(token_id)
        assert found is not None
        return found[0]

    def token(self, token_id: str) -> tuple[TokenInfo, str] | None:
        with self._tx() as conn:
            row = conn.execute(f"SELECT {TOKEN_COLUMNS}, t.secret_sha256 FROM tokens t JOIN users u "
                               "ON u.id = t.user_id WHERE t.id = ?", (token_id,)).fetchone()
        return None if row is None else (_token(row[:-1]), str(row[-1]))

    def tokens(self, username: str | None = None) -> list[TokenInfo]:
        where, args = ("WHERE u.username = ?", (username,)) if username is not None else ("", ())
        with self._tx() as conn:
            rows = conn.execute(f"SELECT {TOKEN_COLUMNS} FROM tokens t JOIN users u ON u.id = t.user_id {where} "
                                "ORDER BY t.created_ms", args).fetchall()
        return [_token(r) for r in rows]

    def revoke_token(self, token_id: str, now: int) -> TokenInfo:
        with self._tx() as conn:
            conn.execute("UPDATE tokens SET revoked_ms = ? WHERE id = ? AND revoked_ms IS NULL", (now, token_id))
        found = self.token(token_id)
        if found is None:
            raise NotFound(f"no token {token_id!r}")
        return found[0]

    # -- failed logins --------------------------------------------------------------------------

    def add_failure(self, keys: list[str], now: int, keep_after: int) -> None:
        with self._tx() as conn:
            conn.executemany("INSERT INTO login_failures (key, ts) VALUES (?, ?)", [(k, now) for k in keys])
            conn.execute("DELETE FROM login_failures WHERE ts < ?", (keep_after,))

    def failures(self, key: str, since: int) -> list[int]:
        with self._tx() as conn:
            rows = conn.execute("SELECT ts FROM login_failures WHERE key = ? AND ts >= ? ORDER BY ts",
                                (key, since)).fetchall()
        return [int(r[0]) for r in rows]

    def clear_failures(self, key: str) -> None:
        with self._tx() as conn:
            conn.execute("DELETE FROM login_failures WHERE key = ?", (key,))

    # -- device credentials (Mosquitto) ---------------------------------------------------------

    def device_credentials(self) -> dict[str, str]:
        with self._tx() as conn:
            rows = conn.execute("SELECT device, mosquitto_hash FROM device_credentials ORDER BY device").fetchall()
        return {str(d): str(h) for d, h in rows}

    def set_device_credential(self, device: str, mosquitto_hash: str, now: int) -> None:
        with self._tx() as conn:
            conn.execute("INSERT INTO device_credentials (device, mosquitto_hash, created_ms) VALUES (?, ?, ?) "
                         "ON CONFLICT (device) DO UPDATE SET mosquitto_hash = excluded.mosquitto_hash, "
                         "created_ms = excluded.created_ms", (device, mosquitto_hash, now))

    def remove_device_credential(self, device: str) -> None:
        with self._tx() as conn:
            conn.execute("DELETE FROM device_credentials WHERE device = ?", (device,))
