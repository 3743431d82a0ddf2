"""Failed-login throttling, shared by every web worker through the account store.

Two sliding windows: per account name (guessing one person's password) and per client address
(trying many names). A refused attempt is not checked at all, so a locked account gives no oracle,
and it is not counted either, so the lock ends on its own when the window slides past.
"""

from __future__ import annotations

from dataclasses import dataclass

from .store import AccountStore

WINDOW_MS = 15 * 60_000
PER_USER = 5
PER_CLIENT = 20


@dataclass(frozen=True)
class LoginLimiter:
    store: AccountStore
    window_ms: int = WINDOW_MS
    per_user: int = PER_USER
    per_client: int = PER_CLIENT

    def _keys(self, username: str, client: str) -> list[tuple[str, int]]:
        return [(f"user:{username.casefold()}", self.per_user), (f"client:{client}", self.per_client)]

    def retry_after_ms(self, username: str, client: str, now: int) -> int:
        """0 when an attempt may go ahead, else how long until the oldest counted failure expires."""
        wait = 0
        for key, limit in self._keys(username, client):
            found = self.store.failures(key, now - self.window_ms)
            if len(found) >= limit:
                wait = max(wait, found[-limit] + self.window_ms - now)
        return wait

    def failed(self, username: str, client: str, now: int) -> None:
        self.store.add_failure([k for k, _ in self._keys(username, client)], now, now - self.window_ms)

    def succeeded(self, username: str) -> None:
        self.store.clear_failures(f"user:{username.casefold()}")
