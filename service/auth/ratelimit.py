"""Failed-login throttling, shared by every web worker through the account store.

What is counted, and why:

- per (account, client address): 5 in 15 minutes. It stops guessing one person's password from
  one place, and only from there: a stranger elsewhere who fails five times locks out their own
  address, not the clerk. Counting per account alone (the first design) let anybody lock any account for
  15 minutes by typing its name wrong five times.
- per client address: 20 in 15 minutes, whatever the names. It stops one place from trying many
  names (or one name through many spellings and accounts). Success does not reset it, or an
  attacker with an account of their own could log in between guesses to start again.

So a correct password from an address that has not failed always gets its check. Guessing from
many addresses is not stopped by a count per account (that count would be the lock-out above);
it is slowed by the cost of a check and the bound on how many run at once (``passwords``), and
made hopeless by the password rule (10+ characters). IPv6 clients are counted per /64, the
block one subscriber is given, or a single machine could walk through its addresses.

Attempts are counted before the password is checked, under the store's write lock
(``reserve_attempt``): reading the count first and writing it after the slow check let 44 of 100
parallel guesses through. A refused attempt is not checked at all, so a locked account gives no
oracle, and it is not counted either, so the lock ends on its own when the window slides past.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from .names import fold
from .store import AccountStore

WINDOW_MS = 15 * 60_000
PER_USER = 5  # per (account, client address)
PER_CLIENT = 20


def client_key(client: str) -> str:
    """An address as the throttle counts it: IPv4 as it is, IPv6 by its /64."""
    try:
        addr = ipaddress.ip_address(client)
    except ValueError:
        return client[:64]
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            return str(addr.ipv4_mapped)
        return str(ipaddress.IPv6Network((addr, 64), strict=False))
    return str(addr)


class LoginThrottledError(Exception):
    """Raised by ``reserve``; accounts.py turns it into its LoginThrottled."""

    def __init__(self, wait_ms: int) -> None:
        super().__init__(wait_ms)
        self.wait_ms = wait_ms


@dataclass(frozen=True)
class Attempt:
    """One reserved attempt: the rows that count it, and the key to clear when it succeeds."""

    row_ids: list[int] = field(default_factory=list)
    pair_key: str = ""


@dataclass(frozen=True)
class LoginLimiter:
    store: AccountStore
    window_ms: int = WINDOW_MS
    per_user: int = PER_USER
    per_client: int = PER_CLIENT

    def _keys(self, username: str, client: str) -> list[tuple[str, int]]:
        c = client_key(client)
        return [(f"user:{fold(username)}|client:{c}", self.per_user), (f"client:{c}", self.per_client)]

    def reserve(self, username: str, client: str, now: int) -> Attempt:
        """Count the attempt now, or LoginThrottledError with the wait when a count is full."""
        keys = self._keys(username, client)
        ids, wait = self.store.reserve_attempt(keys, now, now - self.window_ms)
        if wait > 0:
            raise LoginThrottledError(wait)
        return Attempt(ids, keys[0][0])

    def succeeded(self, attempt: Attempt) -> None:
        """A right password: this attempt does not count, nor do this client's earlier misses on
        this account (typos before getting it right); its count per address stays."""
        self.store.release_attempt(attempt.row_ids)
        self.store.clear_failures(attempt.pair_key)

    def cancelled(self, attempt: Attempt) -> None:
        """Never checked (no slot was free): it must not count, or a flood would lock accounts."""
        self.store.release_attempt(attempt.row_ids)
