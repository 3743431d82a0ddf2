"""Shared fixtures: the repository's config, settings on a temporary data folder, a private broker."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from service.context import Context, build
from service.settings import Settings, load
from tests.brokers import Mosquitto

# the web app fixtures (store, app, client) of the page and export tests, and the fake InfluxDB
# (`fake`); a module with a fixture of the same name keeps its own
pytest_plugins = ["tests.web_support", "tests.fake_influx"]

REPO = Path(__file__).resolve().parent.parent
CONFIG = REPO / "config"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """The repository's config/ with the data folder in tmp_path; no environment leaks in. Logging in
    is off (``web.auth = off``): tests of access control build their settings with it on."""
    return load(CONFIG, env={}, overrides={"store.data_dir": str(tmp_path / "data"), "web.auth": "off"})


@pytest.fixture
def ctx(settings: Settings) -> Context:
    return build(settings)


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    """One real Mosquitto for the session, on a free port, anonymous, persistence on."""
    broker = Mosquitto(tmp_path_factory.mktemp("mosquitto")).start()
    yield broker
    broker.stop()


@pytest.fixture
def own_mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    """A broker for one test (fault tests restart it)."""
    broker = Mosquitto(tmp_path / "mosquitto").start()
    yield broker
    broker.stop()
