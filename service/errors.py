"""The small error tree every layer maps its failures into.

    NongyunError
    ├── SettingsError        configuration is invalid; raised once at start-up
    ├── BadInput             a request parameter or body is invalid → 400
    ├── NotFound             a region, device or record does not exist → 404
    ├── Forbidden            outside the caller's scope → 403
    ├── Conflict             the thing is in a state that refuses the change (void, duplicate) → 409
    └── StoreError
        ├── StoreUnavailable transient: retry later, never drop (connection, 5xx, 429, locked file)
        ├── StoreFault       the store itself is broken (a missing table or column after a bad
        │                    deploy, a corrupt file, a request the server calls malformed): hold
        │                    and retry with back-off, show it, never turn it into rejections
        └── StoreRejected    the store refuses the content of ONE record (a constraint on its
                             values, a field type conflict): reject with the reason, never retry

Transports map vendor exceptions into this tree at the edge (``raise ... from exc``), so the core
never sees sqlite3, urllib3 or influxdb_client exceptions.
"""

from __future__ import annotations


class NongyunError(Exception):
    """Root of nongyun's own errors."""


class SettingsError(NongyunError):
    """The settings are invalid; the message lists every problem with where it came from."""


class BadInput(NongyunError):
    """A caller sent something invalid; ``field`` names the parameter when there is one, ``code``
    the stable reason clients switch on (a payload rejection reason such as ``unknown_plot`` or
    ``implausible_yield``; None: the status's own code, ``bad_request``)."""

    def __init__(self, message: str, field: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.code = code


class NotFound(NongyunError):
    """The thing asked for does not exist."""


class Forbidden(NongyunError):
    """The caller may not see or change this."""


class Conflict(NongyunError):
    """The change is refused by the state of what it changes: ``code`` says why (``duplicate``,
    ``void``, ``changed``), ``id`` names the record at stake (the existing one, for a duplicate)."""

    def __init__(self, message: str, code: str = "conflict", id: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.id = id


class StoreError(NongyunError):
    """A store backend failed."""


class StoreUnavailable(StoreError):
    """Transient: the data was not written and must be retried later."""

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class StoreFault(StoreError):
    """Not about any record: the data was not written, and retrying the same batch is right once
    an operator repaired the store; splitting it into rejections would drop good data."""


class StoreRejected(StoreError):
    """Permanent: the store refuses this content; retrying cannot help."""

    def __init__(self, message: str, reason: str = "store_rejected") -> None:
        super().__init__(message)
        self.reason = reason
