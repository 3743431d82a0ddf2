"""The README's first command, as a user runs it: `nongyun demo` with no broker and no database.

A short history (--days 2) keeps it quick; the harvests of this year and last are always written,
so the district's township table has numbers for all five township-level units.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.brokers import free_port

pytestmark = pytest.mark.slow


def _get(url: str, token: str) -> dict[str, object]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read())  # type: ignore[no-any-return]


def test_demo_comes_up_with_an_in_process_broker_and_answers_the_yields_table(tmp_path: Path) -> None:
    mqtt_port, http_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k != "NONGYUN_LOG_LEVEL"} | {  # the demo's own quiet default
        "NONGYUN_DATA_DIR": str(tmp_path / "data"),
        "NONGYUN_MQTT_URL": f"mqtt://127.0.0.1:{mqtt_port}",  # nothing listens there: the demo starts a broker
        "NONGYUN_HTTP": f"127.0.0.1:{http_port}",
        "NONGYUN_MQTT_CLIENT_ID": f"demo-test-{mqtt_port}",
    }
    proc = subprocess.Popen([sys.executable, "-m", "service.cli", "demo", "--days", "2"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "demo-village" in line:  # the last account: start-up is over
                break
        assert any("in-process MQTT broker" in line for line in lines), lines
        # the URL and the accounts are the last lines: no INFO flood of the broker or the jobs after them
        ready = next(i for i, line in enumerate(lines) if "demo ready" in line)
        assert f"http://127.0.0.1:{http_port}/" in lines[ready]
        assert "demo accounts" in lines[ready + 1] and [w.split()[0] for w in lines[ready + 2:]] == [
            "demo-district", "demo-township", "demo-village"], lines
        assert not any(" INFO " in line for line in lines), lines
        # the demo's district admin, through a token as a script would (the accounts share the data folder)
        made = subprocess.run([sys.executable, "-m", "service.cli", "token", "create", "demo-district"], env=env,
                              capture_output=True, text=True, timeout=60)
        assert made.returncode == 0, made.stderr
        token = made.stdout.strip()
        base = f"http://127.0.0.1:{http_port}/api/v1"
        with pytest.raises(urllib.error.HTTPError) as anonymous:
            urllib.request.urlopen(f"{base}/yields", timeout=10)
        assert anonymous.value.code == 401
        anonymous.value.close()
        with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/login", timeout=10) as page:
            login_page = page.read().decode()
        assert 'id="demo-banner"' in login_page and "demo-village" in login_page
        table = _get(f"{base}/yields?region=211204&group_by=township", token)
        groups = table["groups"]
        assert isinstance(groups, list) and len(groups) == 5
        for g in groups:
            assert g["records"] > 0 and g["yield_per_area"] > 0, g
        # live devices reach ingest through the in-process broker
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            health = _get(f"{base}/health", token)
            if health["ingest"]["received"] > 0:  # type: ignore[index]
                break
            time.sleep(0.5)
        assert health["ingest"]["received"] > 0, health  # type: ignore[index]
        # the first jobs and the live devices have run by now: nothing of theirs reached the terminal
        proc.send_signal(signal.SIGTERM)
        later = proc.stdout.read()
        assert " INFO " not in later and "transitions.core" not in later, later[:2000]
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)  # a scheduled job may be running: shutdown waits for it
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            lines.extend(proc.stdout.readlines())
            proc.stdout.close()
    assert proc.returncode == 0, "".join(lines)
