"""Fixtures shared by the page and export tests: a seeded SqliteStore and the whole web app."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from flask.testing import FlaskClient

from service.context import build
from service.records import YieldRecord
from service.settings import Settings
from service.store.sqlite import SqliteStore
from service.web import create_app
from tests.brokers import free_port

TZ = ZoneInfo("Asia/Shanghai")


def local_ms(text: str) -> int:
    """``2025-06-01T08:00`` in Beijing time → UTC epoch ms."""
    return int(datetime.fromisoformat(text).replace(tzinfo=TZ).timestamp() * 1000)


def crop_yield(village: str, ts: str, crop: str, mu: float, jin: float, plot: str = "") -> YieldRecord:
    """A harvest given in 亩 and 斤, stored in SI as the API would store it."""
    return YieldRecord("", village, local_ms(ts), crop, mu / 15, jin / 2, plot=plot, source="api")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(tmp_path / "pages.sqlite3")
    yield s
    s.close()


@pytest.fixture
def app(settings: Settings, store: SqliteStore) -> Flask:
    """The whole web app (API and pages); its broker probe points at a closed port."""
    ctx = build(settings.with_overrides(mqtt_url=f"mqtt://127.0.0.1:{free_port()}"))
    return create_app(ctx, store)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def get_json(client: FlaskClient, url: str, **query: Any) -> Any:
    resp = client.get(url, query_string=query or None)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return resp.get_json()
