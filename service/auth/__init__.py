"""Access control: staff accounts with a role and a region scope, API tokens, failed-login throttling.

Kept apart from the web layer so the CLI (``nongyun user``, ``nongyun token``, ``nongyun
broker-config``) and the web app share one set of rules and one account store.
"""

from __future__ import annotations

from pathlib import Path

from ..regions import RegionTree
from .accounts import Accounts, LoginFailed, LoginThrottled, NewToken
from .model import ROLES, Account, Principal, Role, TokenInfo
from .passwords import SLOTS_DEFAULT, PasswordChecksBusy, Passwords
from .scope import Scoped, narrow, relation, visible
from .store import AccountStore, SqliteAccounts

__all__ = [
    "ROLES",
    "Account",
    "AccountStore",
    "Accounts",
    "LoginFailed",
    "LoginThrottled",
    "NewToken",
    "PasswordChecksBusy",
    "Principal",
    "Role",
    "Scoped",
    "SqliteAccounts",
    "TokenInfo",
    "narrow",
    "open_accounts",
    "relation",
    "visible",
]


def open_accounts(data_dir: Path, tree: RegionTree, password_checks: int = SLOTS_DEFAULT) -> Accounts:
    """The deployment's accounts: ``{data_dir}/accounts.sqlite3``, for either store backend.
    ``password_checks``: how many Argon2 hashes or checks this process runs at once (passwords.py)."""
    return Accounts(SqliteAccounts.in_dir(data_dir), tree, Passwords(slots=password_checks))
