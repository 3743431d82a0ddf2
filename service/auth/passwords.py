"""Staff passwords, hashed with Argon2id (argon2-cffi, RFC 9106 parameters).

The library writes the parameters into every hash, so they can be raised later: ``needs_rehash``
tells the login to store a fresh hash. ``DUMMY`` is verified for unknown user names so a wrong
name costs as much time as a wrong password and does not tell which one it was.
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_LENGTH = 10
MAX_LENGTH = 256  # Argon2 takes any length; a megabyte "password" is a denial-of-service attempt


class Passwords:
    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self.hasher = hasher or PasswordHasher()
        self._dummy: str | None = None  # made on first use: building an app should not cost a hash

    @property
    def dummy(self) -> str:
        if self._dummy is None:
            self._dummy = self.hasher.hash("nongyun-dummy-password")
        return self._dummy

    def hash(self, password: str) -> str:
        return self.hasher.hash(password)

    def verify(self, stored: str | None, password: str) -> bool:
        """Constant work whether or not the account exists; never raises on a bad hash."""
        if len(password) > MAX_LENGTH:
            return False
        try:
            return self.hasher.verify(stored or self.dummy, password) and stored is not None
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored: str) -> bool:
        return self.hasher.check_needs_rehash(stored)


def check_strength(password: str) -> None:
    """Only length is asked for (NIST SP 800-63B): composition rules make passwords worse."""
    if not MIN_LENGTH <= len(password) <= MAX_LENGTH:
        raise ValueError(f"a password has {MIN_LENGTH} to {MAX_LENGTH} characters")
