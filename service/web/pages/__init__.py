"""The staff dashboards (``views``) and the yields export (``export``), on one blueprint."""

from __future__ import annotations

from .views import bp

__all__ = ["bp"]
