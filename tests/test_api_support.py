"""Fixtures and helpers of the REST API tests: the repository's config, a real SQLite store in tmp_path,
an app whose broker probe points at a loopback port that refuses connections (no API test needs a broker).

Test modules import what they use from here (fixtures included); it holds no tests itself.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from flask.testing import FlaskClient

from service.context import Context, build
from service.records import Batch, Reading, YieldRecord
from service.settings import Settings, load
from service.store.sqlite import SqliteStore
from service.web import create_app
from tests.conftest import CONFIG

TZ = ZoneInfo("Asia/Shanghai")


def local_ms(text: str) -> int:
    """``2025-06-01T08:00`` in Beijing time → UTC epoch ms."""
    return int(datetime.fromisoformat(text).replace(tzinfo=TZ).timestamp() * 1000)


def crop_yield(village: str, ts: str, crop: str, mu: float, jin: float, plot: str = "") -> YieldRecord:
    """A yield record given in 亩 and 斤, stored in SI as ingest would store it."""
    return YieldRecord("", village, local_ms(ts), crop, mu / 15, jin / 2, plot=plot, source="api")


def reading(device: str, village: str, ts: int, **values: float) -> Reading:
    return Reading(device, village, ts, dict(values))


def get_json(client: FlaskClient, url: str, **query: Any) -> Any:
    """GET that must answer 200 with JSON."""
    resp = client.get(url, query_string=query or None)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.mimetype == "application/json"
    return resp.get_json()


def seed(store: SqliteStore, **parts: Any) -> None:
    store.write(Batch(**parts))


@pytest.fixture(scope="session")
def api_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Built once (config is read-only; each test still gets its own store file). The broker URL is a
    loopback port that is bound but never listens, so a connection to it is refused every time."""
    with socket.socket() as refusing:
        refusing.bind(("127.0.0.1", 0))
        port = int(refusing.getsockname()[1])
        yield load(CONFIG, env={}, overrides={"store.data_dir": str(tmp_path_factory.mktemp("api-data")),
                                              "mqtt.url": f"mqtt://127.0.0.1:{port}",
                                              "web.auth": "off"})  # tests/test_access.py tests it on


@pytest.fixture(scope="session")
def api_ctx(api_settings: Settings) -> Context:
    return build(api_settings)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(tmp_path / "api.sqlite3")
    yield s
    s.close()


@pytest.fixture
def app(api_ctx: Context, store: SqliteStore) -> Flask:
    return create_app(api_ctx, store)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()
