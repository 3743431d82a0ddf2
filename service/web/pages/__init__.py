"""The staff dashboards (``views``) and the yields export (``export``), on one blueprint."""

from __future__ import annotations

from . import admin  # noqa: F401  (the admins' registry page, on the same blueprint)
from .views import bp

__all__ = ["bp"]
