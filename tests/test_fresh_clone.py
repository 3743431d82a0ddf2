"""The README's first command on a fresh clone, as a new user runs it: install, demo, charts drawn.

A clone has no ``node_modules/`` and no ``static/vendor/``: the install step alone must bring ECharts
(setup.py), and the demo, started from a folder without ``config/``, must find the district the
package carries. The wheel a release would ship carries both as well. This is the committed HEAD
(CI runs on a clean clone of main, so there it is exactly what lands).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.brokers import free_port
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, assert_charts_drawn, wait_js
from tests.conftest import REPO

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items()
            if not k.startswith(("NONGYUN_", "INFLUXDB_", "VIRTUAL_ENV", "PYTHON"))}


def _run(args: list[str], cwd: Path, timeout: float = 600) -> float:
    began = time.monotonic()
    out = subprocess.run(args, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=timeout, check=False)
    assert out.returncode == 0, f"{' '.join(args)}:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return time.monotonic() - began


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read()
    except OSError:
        return 0, b""


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not (REPO / ".git").exists() or shutil.which("git") is None:
        pytest.skip("not a git checkout")
    folder = tmp_path_factory.mktemp("fresh") / "nongyun"
    _run(["git", "clone", "--quiet", "--no-hardlinks", str(REPO), str(folder)], REPO.parent, timeout=120)
    assert not (folder / "node_modules").exists() and not (folder / "service/web/static/vendor").exists()
    return folder


def test_the_readme_demo_command_draws_charts_from_any_folder(clone: Path, tmp_path: Path) -> None:
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], tmp_path)
    installed_s = _run([str(venv / "bin" / "pip"), "install", "-q", "-e", "."], clone)  # the README's step
    elsewhere = tmp_path / "elsewhere"  # no config/ here: the packaged district must be found
    elsewhere.mkdir()
    http, mqtt = free_port(), free_port()
    env = _env() | {"NONGYUN_HTTP": f"127.0.0.1:{http}", "NONGYUN_MQTT_URL": f"mqtt://127.0.0.1:{mqtt}"}
    log = (tmp_path / "demo.log").open("w")
    began = time.monotonic()
    demo = subprocess.Popen([str(venv / "bin" / "nongyun"), "demo", "--days", "2", "--no-live"], cwd=elsewhere,
                            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{http}"
    try:
        deadline = time.monotonic() + 240
        while _get(base + "/login")[0] != 200:
            assert demo.poll() is None, (tmp_path / "demo.log").read_text()
            assert time.monotonic() < deadline, "the demo never answered"
            time.sleep(0.5)
        ready_s = time.monotonic() - began
        status, body = _get(base + "/vendor/echarts.min.js")
        assert status == 200 and len(body) > 500_000 and b"echarts" in body[:2000]
        assert "missing" not in (tmp_path / "demo.log").read_text()  # no start-up warning about charts
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                tab: Any = browser.new_page(viewport={"width": 1280, "height": 900})
                tab.goto(base + "/login")
                tab.fill("#login-form [name=username]", "demo-district")
                tab.fill("#login-form [name=password]", "nongyun-demo")
                tab.click("#login-form button[type=submit]")
                for path, charts in (("/", 2), ("/r/211204101", 4)):
                    tab.goto(base + path)
                    wait_js(tab, "document.body.dataset.loaded || document.body.dataset.failed", timeout=60_000)
                    assert not tab.evaluate("document.body.dataset.failed"), tab.text_content("#error")
                    assert tab.query_selector("#charts-missing") is None
                    # a chart with nothing to plot says so in words (无降雨, 土壤冻结 in a December demo)
                    said = tab.eval_on_selector_all(".chart[data-empty]", "els => els.map(e => e.dataset.empty)")
                    assert all(said) and tab.locator(".chart").count() == charts, (path, said)
                    assert charts - len(said) >= 1, (path, said)  # the output chart always has data
                    assert_charts_drawn(tab, ".chart:not([data-empty])", charts - len(said))
            finally:
                browser.close()
    finally:
        os.killpg(demo.pid, signal.SIGINT)
        try:
            demo.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(demo.pid, signal.SIGKILL)
            demo.wait(timeout=10)
        log.close()
    print(f"\nfresh clone: pip install -e . {installed_s:.1f} s, nongyun demo --days 2 answered after {ready_s:.1f} s")


def test_a_wheel_built_from_the_clone_carries_charts_and_the_district(clone: Path, tmp_path: Path) -> None:
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--wheel-dir", str(tmp_path), "."], clone)
    (wheel,) = tmp_path.glob("nongyun-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"service/web/static/vendor/echarts.min.js", "service/default_config/regions.yaml",
            "service/default_config/devices.yaml", "service/default_config/catalogue.toml"} <= names
