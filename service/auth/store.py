"""Where accounts, API tokens, failed logins and device credentials are kept.

``AccountStore`` is the small interface the rest of the code uses; ``SqliteAccounts`` keeps them in
``{data_dir}/accounts.sqlite3``. That file is the deployment's state for both store backends: the
web, jobs and CLI processes share the data volume, accounts change rarely (the CLI or an admin
writes them), and failed logins are short rows that expire. WAL mode lets gunicorn's workers read
while one writes. Secrets are never stored: password hashes (Argon2), SHA-256 of API tokens and of
session ids (both are 256 random bits, so a slow hash adds nothing) and the Mosquitto PBKDF2 hashes
of devices.

Sessions are rows here rather than only signed cookies, because a signed cookie cannot be taken
back: logout, disabling an account and a new password must end a session at once, on every web
process, and a copied cookie must stop working with them. Two rules need a write lock held across
a read and a write, so several web processes on one file cannot interleave them: a login attempt
is counted (reserved) before its password is checked (``reserve_attempt``), and a new account's
folded name is checked against the others before it is inserted (``add_user``).
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol, cast

from ..errors import BadInput, NotFound, StoreUnavailable
from ..store import sqlite_schema
from .model import Account, Role, TokenInfo
from .names import fold

log = logging.getLogger(__name__)
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
    epoch INTEGER NOT NULL DEFAULT 1,  -- unused since sessions are rows; kept for older files
    username_key TEXT  -- names.fold(username): unique, so look-alike names cannot coexist
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
CREATE TABLE IF NOT EXISTS sessions (
    id_sha256 TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id),
    created_ms INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_user ON sessions (user_id);
CREATE TABLE IF NOT EXISTS device_credentials (
    device TEXT PRIMARY KEY,
    mosquitto_hash TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);
"""

# Schema versions (store/sqlite_schema): append a step to add a migration, never edit a released one.
ACCOUNT_STEPS: list[sqlite_schema.Step] = [
    sqlite_schema.Step("the schema before versions (issue 11)", SCHEMA),
]

USER_COLUMNS = "id, username, role, scope, disabled, demo, created_ms"
TOKEN_COLUMNS = "t.id, t.user_id, u.username, t.name, t.created_ms, t.expires_ms, t.revoked_ms"


class AccountStore(Protocol):
    def add_user(self, username: str, password_hash: str, role: Role, scope: str, now: int,
                 demo: bool = False) -> Account: ...
    def user(self, username: str) -> tuple[Account, str] | None: ...
    def user_for_login(self, username: str) -> tuple[Account, str] | None: ...
    def user_by_id(self, user_id: int) -> Account | None: ...
    def users(self) -> list[Account]: ...
    def set_disabled(self, username: str, disabled: bool, revoke_tokens_at: int | None = None) -> Account: ...
    def set_password_hash(self, username: str, password_hash: str, end_sessions: bool = False) -> Account: ...
    def add_session(self, id_sha256: str, user_id: int, now: int, expires_ms: int) -> None: ...
    def session_user(self, id_sha256: str, now: int) -> Account | None: ...
    def remove_session(self, id_sha256: str) -> None: ...
    def add_token(self, token_id: str, user_id: int, name: str, secret_sha256: str, now: int,
                  expires_ms: int) -> TokenInfo: ...
    def token(self, token_id: str) -> tuple[TokenInfo, str] | None: ...
    def tokens(self, username: str | None = None) -> list[TokenInfo]: ...
    def revoke_token(self, token_id: str, now: int) -> TokenInfo: ...
    def add_failure(self, keys: list[str], now: int, keep_after: int) -> None: ...
    def failures(self, key: str, since: int) -> list[int]: ...
    def clear_failures(self, key: str) -> None: ...
    def reserve_attempt(self, keys: list[tuple[str, int]], now: int, since: int) -> tuple[list[int], int]: ...
    def release_attempt(self, row_ids: list[int]) -> None: ...
    def device_credentials(self) -> dict[str, str]: ...
    def set_device_credential(self, device: str, mosquitto_hash: str, now: int) -> None: ...
    def remove_device_credential(self, device: str) -> None: ...


def _account(row: tuple[object, ...]) -> Account:
    uid, username, role, scope, disabled, demo, created = row
    return Account(int(cast(int, uid)), str(username), cast(Role, role), str(scope), bool(disabled), bool(demo),
                   int(cast(int, created)))


def _token(row: tuple[object, ...]) -> TokenInfo:
    tid, uid, username, name, created, expires, revoked = row
    return TokenInfo(str(tid), int(cast(int, uid)), str(username), str(name), int(cast(int, created)),
                     int(cast(int, expires)), None if revoked is None else int(cast(int, revoked)))


class SqliteAccounts:
    """One short-lived connection per call: cheap for SQLite, and safe across threads and forks."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = sqlite3.connect(path, timeout=10, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"accounts: cannot open {path}: {exc}") from exc
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            sqlite_schema.upgrade(conn, path, ACCOUNT_STEPS)
        except sqlite3.OperationalError as exc:
            raise StoreUnavailable(f"accounts: {exc}", retry_after_s=1) from exc
        finally:
            conn.close()
        self._migrate()  # files older than the folded names (version 1 without username_key)
        path.chmod(0o600)  # hashes only, but nobody else on the host needs them

    @classmethod
    def in_dir(cls, data_dir: Path) -> SqliteAccounts:
        return cls(Path(data_dir) / FILENAME)

    def _migrate(self) -> None:
        """Files made before names were folded: add and fill ``username_key``. Under the write lock
        and checked again inside it, since every web worker opens the file when it starts. Names that
        already collide are left as they are (refusing to start would lock everyone out) and
        reported; the index is then not unique, and ``add_user`` still refuses a new look-alike."""
        with self._immediate() as conn:
            columns = {str(r[1]) for r in conn.execute("PRAGMA table_info(users)")}
            if "username_key" not in columns:
                conn.execute("ALTER TABLE users ADD COLUMN username_key TEXT")
            missing = conn.execute("SELECT id, username FROM users WHERE username_key IS NULL").fetchall()
            conn.executemany("UPDATE users SET username_key = ? WHERE id = ?",
                             [(fold(str(name)), uid) for uid, name in missing])
            indexes = {str(r[1]) for r in conn.execute("PRAGMA index_list(users)")}
            if "users_username_key" not in indexes:
                clashes = conn.execute("SELECT group_concat(username, ', ') FROM users GROUP BY username_key "
                                       "HAVING count(*) > 1").fetchall()
                unique = "" if clashes else "UNIQUE "
                conn.execute(f"CREATE {unique}INDEX users_username_key ON users (username_key)")
                for (names,) in clashes:
                    log.warning("accounts %s differ only in case, width or look-alike letters: rename or "
                                "disable all but one", names)

    @contextmanager
    def _immediate(self) -> Iterator[sqlite3.Connection]:
        """A transaction that holds the write lock from its first statement (BEGIN IMMEDIATE), for a
        read that decides a write: with a deferred one, two processes could both read, then both write."""
        try:
            conn = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"accounts: cannot open {self.path}: {exc}") from exc
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            raise StoreUnavailable(f"accounts: {exc}", retry_after_s=1) from exc
        finally:
            conn.close()

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
        key = fold(username)
        with self._immediate() as conn:
            if conn.execute("SELECT 1 FROM users WHERE username_key = ? OR username = ?", (key, username)).fetchone():
                raise BadInput(f"username: {username!r} is taken, or differs from an account's name only in case, "
                               "width or look-alike letters", "username")
            try:
                cur = conn.execute("INSERT INTO users (username, username_key, password_hash, role, scope, demo, "
                                   "created_ms) VALUES (?, ?, ?, ?, ?, ?, ?)",
                                   (username, key, password_hash, role, scope, int(demo), now))
            except sqlite3.IntegrityError:
                raise BadInput(f"username: {username!r} is taken", "username") from None
            row = conn.execute(f"SELECT {USER_COLUMNS} FROM users WHERE id = ?", (cur.lastrowid,)).fetchone()
        return _account(row)

    def user(self, username: str) -> tuple[Account, str] | None:
        with self._tx() as conn:
            row = conn.execute(f"SELECT {USER_COLUMNS}, password_hash FROM users WHERE username = ?",
                               (username,)).fetchone()
        return None if row is None else (_account(row[:-1]), str(row[-1]))

    def user_for_login(self, username: str) -> tuple[Account, str] | None:
        """The account a typed name means: the one of that exact name, else the only one whose name
        folds the same (``Wang`` or ``ｗａｎｇ`` for ``wang``). Ambiguous (older files may hold
        look-alikes side by side) is no account, so a guess never lands on the wrong one."""
        with self._tx() as conn:
            rows = conn.execute(f"SELECT {USER_COLUMNS}, password_hash FROM users WHERE username_key = ? "
                                "ORDER BY username = ? DESC LIMIT 2", (fold(username), username)).fetchall()
        if not rows or (len(rows) > 1 and rows[0][1] != username):
            return None
        return _account(rows[0][:-1]), str(rows[0][-1])

    def user_by_id(self, user_id: int) -> Account | None:
        with self._tx() as conn:
            row = conn.execute(f"SELECT {USER_COLUMNS} FROM users WHERE id = ?", (user_id,)).fetchone()
        return None if row is None else _account(row)

    def users(self) -> list[Account]:
        with self._tx() as conn:
            rows = conn.execute(f"SELECT {USER_COLUMNS} FROM users ORDER BY scope, username").fetchall()
        return [_account(r) for r in rows]

    def set_disabled(self, username: str, disabled: bool, revoke_tokens_at: int | None = None) -> Account:
        """Disabling ends every session; enabling a disabled account with ``revoke_tokens_at`` also
        revokes its tokens, in the same transaction, so no moment exists in which they work again.
        Enabling an account that is active already changes nothing."""
        with self._tx() as conn:
            row = conn.execute("SELECT id, disabled FROM users WHERE username = ?", (username,)).fetchone()
            if row is None:
                raise NotFound(f"no account {username!r}")
            uid, was = int(row[0]), bool(row[1])
            conn.execute("UPDATE users SET disabled = ? WHERE id = ?", (int(disabled), uid))
            if disabled:
                conn.execute("DELETE FROM sessions WHERE user_id = ?", (uid,))
            elif was and revoke_tokens_at is not None:
                conn.execute("UPDATE tokens SET revoked_ms = ? WHERE user_id = ? AND revoked_ms IS NULL",
                             (revoke_tokens_at, uid))
            row = conn.execute(f"SELECT {USER_COLUMNS} FROM users WHERE id = ?", (uid,)).fetchone()
        return _account(row)

    def set_password_hash(self, username: str, password_hash: str, end_sessions: bool = False) -> Account:
        """``end_sessions`` for a new password (whoever held the old one may hold a session); a
        rehash at login keeps them."""
        with self._tx() as conn:
            cur = conn.execute("UPDATE users SET password_hash = ? WHERE username = ?", (password_hash, username))
            if cur.rowcount == 0:
                raise NotFound(f"no account {username!r}")
            row = conn.execute(f"SELECT {USER_COLUMNS} FROM users WHERE username = ?", (username,)).fetchone()
            if end_sessions:
                conn.execute("DELETE FROM sessions WHERE user_id = ?", (row[0],))
        return _account(row)

    # -- sessions -------------------------------------------------------------------------------

    def add_session(self, id_sha256: str, user_id: int, now: int, expires_ms: int) -> None:
        with self._tx() as conn:
            conn.execute("DELETE FROM sessions WHERE expires_ms <= ?", (now,))
            conn.execute("INSERT INTO sessions (id_sha256, user_id, created_ms, expires_ms) VALUES (?, ?, ?, ?)",
                         (id_sha256, user_id, now, expires_ms))

    def session_user(self, id_sha256: str, now: int) -> Account | None:
        """The account of a live session: not expired, not ended, its account not disabled."""
        cols = ", ".join(f"u.{c.strip()}" for c in USER_COLUMNS.split(","))
        with self._tx() as conn:
            row = conn.execute(f"SELECT {cols} FROM sessions s JOIN users u ON u.id = s.user_id "
                               "WHERE s.id_sha256 = ? AND s.expires_ms > ? AND u.disabled = 0",
                               (id_sha256, now)).fetchone()
        return None if row is None else _account(row)

    def remove_session(self, id_sha256: str) -> None:
        with self._tx() as conn:
            conn.execute("DELETE FROM sessions WHERE id_sha256 = ?", (id_sha256,))

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

    def reserve_attempt(self, keys: list[tuple[str, int]], now: int, since: int) -> tuple[list[int], int]:
        """Count one login attempt under every key before its password is checked: ``(row ids, 0)``,
        or ``([], ms to wait)`` when a key already holds its limit of rows since ``since``. Rows of
        attempts still being checked count too, which is what stops a burst of parallel guesses:
        the sixth of a hundred sees five rows, whether the first five have finished or not."""
        with self._immediate() as conn:
            conn.execute("DELETE FROM login_failures WHERE ts < ?", (since,))
            wait = 0
            for key, limit in keys:
                rows = conn.execute("SELECT ts FROM login_failures WHERE key = ? AND ts >= ? ORDER BY ts DESC "
                                    "LIMIT ?", (key, since, limit)).fetchall()
                if len(rows) >= limit:
                    wait = max(wait, int(rows[-1][0]) - since, 1)
            if wait:
                return [], wait
            ids = [int(cast(int, conn.execute("INSERT INTO login_failures (key, ts) VALUES (?, ?)",
                                              (key, now)).lastrowid)) for key, _ in keys]
        return ids, 0

    def release_attempt(self, row_ids: list[int]) -> None:
        """Take back a reserved attempt (it succeeded, or was never checked)."""
        with self._tx() as conn:
            conn.executemany("DELETE FROM login_failures WHERE rowid = ?", [(i,) for i in row_ids])

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
