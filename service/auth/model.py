"""Who is asking: staff accounts, their role and scope, API tokens, and the principal of a request.

A scope is a region code at any tier (district 6, township 9, village 12 digits); because codes
nest by prefix, "inside the scope" is a prefix test and needs no tree walk. Roles are ordered:
an editor may do what a viewer may, an admin what an editor may.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Role = Literal["viewer", "editor", "admin"]
ROLES: tuple[Role, ...] = ("viewer", "editor", "admin")
Via = Literal["session", "token", "open"]


def role_at_least(role: Role, needed: Role) -> bool:
    return ROLES.index(role) >= ROLES.index(needed)


@dataclass(frozen=True)
class Account:
    id: int
    username: str
    role: Role
    scope: str
    disabled: bool
    demo: bool  # created by `nongyun demo`: listed on the login page with the demo password
    created_ms: int


@dataclass(frozen=True)
class TokenInfo:
    id: str  # public part of the token, also its primary key
    user_id: int
    username: str
    name: str
    created_ms: int
    expires_ms: int
    revoked_ms: int | None

    def active(self, now: int) -> bool:
        return self.revoked_ms is None and now < self.expires_ms


@dataclass(frozen=True)
class Principal:
    """The caller of one request. ``via="open"`` is the whole district when ``web.auth = off``."""

    username: str
    role: Role
    scope: str
    via: Via

    def may(self, needed: Role) -> bool:
        return role_at_least(self.role, needed)
