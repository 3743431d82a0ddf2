"""The MQTT password in mqtt.url never reaches a terminal or a log: ``serve``, ``ingest``, ``simulate``
and ``settings`` run as real processes (their stdout and stderr, logs included, are read whole), and a
rejected URL's error message is redacted too."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from service.cli import main
from service.settings import redact_url
from tests.brokers import Mosquitto, free_port
from tests.conftest import CONFIG

PASSWORD = "Sup3r-s3cret-pw"  # the secret the test hunts for


def _env(tmp_path: Path, url: str) -> dict[str, str]:
    return os.environ | {"NONGYUN_CONFIG": str(CONFIG), "NONGYUN_DATA_DIR": str(tmp_path / "data"),
                         "NONGYUN_MQTT_URL": url, "NONGYUN_HTTP": f"127.0.0.1:{free_port()}",
                         "NONGYUN_WEB_AUTH": "off", "NONGYUN_LOG_LEVEL": "DEBUG"}


@pytest.mark.parametrize("command", [["serve"], ["ingest"], ["simulate", "--speed", "60"]])
def test_long_running_commands_print_the_url_without_its_password(
        command: list[str], own_mosquitto: Mosquitto, tmp_path: Path) -> None:
    mosquitto = own_mosquitto  # simulate leaves retained status messages: never on the shared broker
    url = f"mqtt://nongyun:{PASSWORD}@127.0.0.1:{mosquitto.port}"
    out, err = tmp_path / "out", tmp_path / "err"
    with out.open("wb") as o, err.open("wb") as e:
        proc = subprocess.Popen([sys.executable, "-m", "service.cli", *command], stdout=o, stderr=e,
                                env=_env(tmp_path, url))
        try:
            deadline = time.monotonic() + 30
            while "****@127.0.0.1" not in out.read_text() and time.monotonic() < deadline:
                assert proc.poll() is None, err.read_text()
                time.sleep(0.1)
            time.sleep(1.0)  # let it connect and log for a moment
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
    text = out.read_text() + err.read_text()
    assert f"mqtt://nongyun:****@127.0.0.1:{mosquitto.port}" in text, text
    assert PASSWORD not in text


def test_settings_and_a_rejected_url_hide_the_password(tmp_path: Path) -> None:
    env = {k: v for k, v in _env(tmp_path, f"mqtts://dev:{PASSWORD}@127.0.0.1:8883").items()
           if k.startswith("NONGYUN_")}
    shown = CliRunner().invoke(main, ["settings"], env=env)
    assert shown.exit_code == 0, shown.output
    assert "mqtts://dev:****@127.0.0.1:8883" in shown.output and PASSWORD not in shown.output
    bad = CliRunner().invoke(main, ["settings"], env=env | {"NONGYUN_MQTT_URL": f"ftp://dev:{PASSWORD}@h"})
    assert bad.exit_code == 2 and "mqtt.url" in bad.output and PASSWORD not in bad.output


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="@/:?#[]"),
               min_size=1, max_size=30))
def test_redact_url_never_returns_the_password(password: str) -> None:
    from urllib.parse import quote

    url = f"mqtt://user:{quote(password, safe='')}@broker.example:1883/x"
    shown = redact_url(url)
    assert shown == "mqtt://user:****@broker.example:1883/x"
