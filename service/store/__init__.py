"""Storage behind one interface (``base.Store``); ``open_store`` picks the backend from settings."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import Store

if TYPE_CHECKING:
    from ..settings import Settings

__all__ = ["Store", "open_store"]


def open_store(settings: Settings) -> Store:
    if settings.store == "influxdb":
        from .influx import InfluxStore

        return InfluxStore.from_settings(settings)
    from .sqlite import SqliteStore

    return SqliteStore.from_settings(settings)
