"""The ``store`` fixture: every contract test runs against every backend.

- ``sqlite``: always;
- ``influxdb-fake``: always, against the protocol-faithful fake in tests/fake_influx.py;
- ``influxdb-real``: only when INFLUXDB_V2_URL (and _TOKEN, _ORG) point at a real InfluxDB 2.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest

from service.store.base import Store
from service.store.sqlite import SqliteStore

BACKENDS = ["sqlite", "influxdb-fake", "influxdb-real"]


def _influx_factory(name: str) -> Any:
    try:
        module = importlib.import_module("tests.store.influx_backends")
    except ImportError as exc:  # the InfluxDB backend is optional for a checkout without it
        pytest.skip(f"InfluxDB test backends not available: {exc}")
    return getattr(module, name)


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    backend = request.param
    if backend == "sqlite":
        s = SqliteStore(tmp_path / "store.sqlite3")
        yield s
        s.close()
        return
    if backend == "influxdb-real" and not os.environ.get("INFLUXDB_V2_URL"):
        pytest.skip("influxdb-real: set INFLUXDB_V2_URL, INFLUXDB_V2_TOKEN and INFLUXDB_V2_ORG "
                    "to run against a real InfluxDB 2")
    factory = _influx_factory("fake_store" if backend == "influxdb-fake" else "real_store")
    cm: AbstractContextManager[Store] = factory(tmp_path)
    with cm as s:
        yield s
