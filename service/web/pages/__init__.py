"""The staff dashboards (``views``), the yields export (``export``), the registry (``admin``) and the
record pages (``records``), on one blueprint."""

from __future__ import annotations

from . import admin, records  # noqa: F401  (the admins' registry page, the record pages: same blueprint)
from .views import bp

__all__ = ["bp"]
