"""Staff passwords, hashed with Argon2id (argon2-cffi, RFC 9106 parameters).

The library writes the parameters into every hash, so they can be raised later: ``needs_rehash``
tells the login to store a fresh hash. ``DUMMY`` is verified for unknown user names so a wrong
name costs as much time as a wrong password and does not tell which one it was.

Every hash and check holds 64 MiB for as long as it runs (that memory is what makes Argon2 costly
to attack), and login is open to anyone: without a bound, 60 anonymous logins at once held 2 GB.
So a process runs at most ``slots`` of them at once (``web.password_checks``); a few more may wait
briefly for a slot, and the rest are refused at once with ``PasswordChecksBusy`` (503 with
``Retry-After``), which costs the server nothing. The bound is per process: gunicorn's N workers
hold at most N × slots × 64 MiB.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from ..errors import NongyunError

MIN_LENGTH = 10
MAX_LENGTH = 256  # Argon2 takes any length; a megabyte "password" is a denial-of-service attempt
SLOTS_DEFAULT = 2  # 2 × 64 MiB; one check already keeps 2 cores busy (parallelism 4)
WAITING_PER_SLOT = 8  # a burst of real logins waits its turn; a flood beyond that is turned away
LOGIN_WAIT_S = 3.0  # a login waits this long for a slot, then answers 503
ADMIN_WAIT_S = 30.0  # creating an account or setting a password (admins, the CLI) waits longer


class PasswordChecksBusy(NongyunError):
    """Every slot is taken and the queue is full or too slow: try again shortly."""

    def __init__(self, retry_after_s: int = 1) -> None:
        super().__init__(f"too many logins at once; try again in {retry_after_s} s")
        self.retry_after_s = retry_after_s


class CheckSlots:
    """A semaphore with a bounded queue: ``slots`` holders, at most ``waiting`` more in line."""

    def __init__(self, slots: int, waiting: int) -> None:
        if slots < 1:
            raise ValueError("slots: at least 1")
        self.slots = slots
        self._free = threading.BoundedSemaphore(slots)
        self._lock = threading.Lock()
        self._waiting = 0
        self._limit = waiting

    @contextmanager
    def take(self, timeout_s: float) -> Iterator[None]:
        if not self._free.acquire(blocking=False):
            with self._lock:
                if self._waiting >= self._limit:
                    raise PasswordChecksBusy()
                self._waiting += 1
            try:
                got = self._free.acquire(timeout=timeout_s)
            finally:
                with self._lock:
                    self._waiting -= 1
            if not got:
                raise PasswordChecksBusy()
        try:
            yield
        finally:
            self._free.release()


class Passwords:
    def __init__(self, hasher: PasswordHasher | None = None, slots: int = SLOTS_DEFAULT) -> None:
        self.hasher = hasher or PasswordHasher()
        self.slots = CheckSlots(slots, slots * WAITING_PER_SLOT)
        self._dummy: str | None = None  # made on first use: building an app should not cost a hash

    @property
    def dummy(self) -> str:
        if self._dummy is None:
            self._dummy = self.hash("nongyun-dummy-password", LOGIN_WAIT_S)
        return self._dummy

    def hash(self, password: str, wait_s: float = ADMIN_WAIT_S) -> str:
        with self.slots.take(wait_s):
            return self.hasher.hash(password)

    def verify(self, stored: str | None, password: str) -> bool:
        """Constant work whether or not the account exists; never raises on a bad hash.
        PasswordChecksBusy when no slot frees up in time (nothing was checked)."""
        if len(password) > MAX_LENGTH:
            return False
        target = stored or self.dummy
        try:
            with self.slots.take(LOGIN_WAIT_S):
                return self.hasher.verify(target, password) and stored is not None
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored: str) -> bool:
        return self.hasher.check_needs_rehash(stored)


def check_strength(password: str) -> None:
    """Only length is asked for (NIST SP 800-63B): composition rules make passwords worse."""
    if not MIN_LENGTH <= len(password) <= MAX_LENGTH:
        raise ValueError(f"a password has {MIN_LENGTH} to {MAX_LENGTH} characters")
