"""Registries that change without restarts: `nongyun ingest` and `nongyun web` run as separate real
processes on one data folder and a real Mosquitto; devices and plots added or moved with the CLI are
accepted by both within the poll interval. The measured delays are printed (pytest -s)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from service.times import now_ms
from tests.brokers import Mosquitto, free_port, wait_port
from tests.conftest import CONFIG
from tests.test_ingest import Publisher

POLL_S = 2  # the tests' poll interval; the default (10 s) keeps the same code path
NEW_DEVICE, NEW_PLOT = "live-st-1", "live-plot-1"
VILLAGE_A, VILLAGE_B = "211204101203", "211204101204"
SCALE = "qh-gs-101"  # a grain scale of 大孟屯村 (211204101200)
TZ = ZoneInfo("Asia/Shanghai")


def _env(data: Path, mqtt_port: int, http_port: int) -> dict[str, str]:
    return {**os.environ, "NONGYUN_CONFIG": str(CONFIG), "NONGYUN_DATA_DIR": str(data), "NONGYUN_WEB_AUTH": "off",
            "NONGYUN_MQTT_URL": f"mqtt://127.0.0.1:{mqtt_port}", "NONGYUN_HTTP": f"127.0.0.1:{http_port}",
            "NONGYUN_REGISTRY_POLL_S": str(POLL_S), "NONGYUN_MQTT_CLIENT_ID": f"live-{http_port}"}


class Deployment:
    def __init__(self, data: Path, mosquitto: Mosquitto) -> None:
        self.http_port = free_port()
        self.env = _env(data, mosquitto.port, self.http_port)
        self.procs = [subprocess.Popen([sys.executable, "-m", "service.cli", kind], env=self.env,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                      for kind in ("ingest", "web")]
        wait_port(self.http_port, 60)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "service.cli", *args], env=self.env, capture_output=True,
                              text=True, timeout=60)

    def get(self, path: str) -> tuple[int, Any]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}{path}", timeout=10) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")

    def stop(self) -> None:
        for p in self.procs:  # only the processes this test started, by their handles
            p.terminate()
        for p in self.procs:
            p.wait(timeout=20)


@pytest.fixture
def deployment(tmp_path: Path, mosquitto: Mosquitto) -> Iterator[Deployment]:
    dep = Deployment(tmp_path / "data", mosquitto)
    yield dep
    dep.stop()


def until(check: Callable[[], bool], timeout: float, what: str, every: Callable[[], None] = lambda: None) -> float:
    """Seconds until ``check`` holds, calling ``every`` (e.g. publish again) before each look."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        every()
        if check():
            return time.monotonic() - start
        time.sleep(0.25)
    raise AssertionError(f"not within {timeout} s: {what}")


def _count(dep: Deployment, region: str, since_ms: int) -> int:
    start = datetime.fromtimestamp(since_ms / 1000, TZ).replace(minute=0, second=0, microsecond=0)
    q = f"region={region}&metric=soil_moisture&agg=count&every=1d&group_by=device&start={start.isoformat()}"
    status, ans = dep.get("/api/v1/readings?" + q.replace("+", "%2B"))
    assert status == 200, ans
    return int(sum(v for s in ans["series"] if s["key"] == NEW_DEVICE for _, v in s["points"] if v))


def test_a_device_added_and_moved_with_the_cli_reaches_running_ingest_and_web(
        deployment: Deployment, mosquitto: Mosquitto) -> None:
    dep, pub = deployment, Publisher(mosquitto)
    try:
        assert dep.get(f"/api/v1/devices/{NEW_DEVICE}")[0] == 404
        t0 = time.monotonic()
        added = dep.cli("devices", "add", NEW_DEVICE, "--kind", "station", "--village", VILLAGE_A,
                        "--metric", "soil_moisture")
        assert added.returncode == 0, added.stderr
        device, password = added.stdout.strip().split("\t")
        assert device == NEW_DEVICE and len(password) >= 20  # the credential, shown once
        cli_s = time.monotonic() - t0
        web_s = until(lambda: dep.get(f"/api/v1/devices/{NEW_DEVICE}")[0] == 200, 60, "web knows the device")
        first = now_ms()

        def send_a() -> None:
            pub.send(f"nongyun/v1/{NEW_DEVICE}/telemetry", {"ts": now_ms(), "readings": {"soil_moisture": 21.0}})

        ingest_s = until(lambda: _count(dep, VILLAGE_A, first) > 0, 60, "ingest stores it", send_a)
        print(f"\ndevice add: CLI {cli_s:.1f} s; then web {web_s:.1f} s, ingest {ingest_s:.1f} s")
        assert web_s < 60 and ingest_s < 60
        in_a = _count(dep, VILLAGE_A, first)

        moved = dep.cli("devices", "move", NEW_DEVICE, "--village", VILLAGE_B)
        assert moved.returncode == 0, moved.stderr

        def listed_in_b() -> bool:
            status, ans = dep.get(f"/api/v1/devices?region={VILLAGE_B}")
            return status == 200 and NEW_DEVICE in [d["id"] for d in ans["devices"]]

        until(listed_in_b, 60, "the web lists the device in its new village")
        assert NEW_DEVICE not in [d["id"] for d in dep.get(f"/api/v1/devices?region={VILLAGE_A}")[1]["devices"]]
        assert dep.get(f"/api/v1/devices/{NEW_DEVICE}")[1]["village"] == VILLAGE_B

        def send_b() -> None:
            pub.send(f"nongyun/v1/{NEW_DEVICE}/telemetry", {"ts": now_ms(), "readings": {"soil_moisture": 33.0}})

        move_s = until(lambda: _count(dep, VILLAGE_B, first) > 0, 60, "ingest tags the new village", send_b)
        print(f"device move: ingest {move_s:.1f} s after the CLI")
        pub.flush()
        time.sleep(1)
        # the readings measured before the move stay in the old village's answers
        assert _count(dep, VILLAGE_A, first) >= in_a > 0
        assert _count(dep, VILLAGE_B, first) > 0
    finally:
        pub.close()


def test_a_plot_added_with_the_cli_is_accepted_by_running_ingest_and_web(
        deployment: Deployment, mosquitto: Mosquitto) -> None:
    dep, pub = deployment, Publisher(mosquitto)
    year = datetime.now(TZ).year
    try:
        t0 = time.monotonic()
        added = dep.cli("plots", "add", NEW_PLOT, "--village", VILLAGE_B, "--area-mu", "40", "--name", "新地块")
        assert added.returncode == 0, added.stderr
        cli_s = time.monotonic() - t0

        def web_has_it() -> bool:
            status, ans = dep.get(f"/api/v1/plots?region={VILLAGE_B}")
            return status == 200 and NEW_PLOT in [p["id"] for p in ans["plots"]]

        web_s = until(web_has_it, 60, "web lists the plot")

        def send() -> None:
            record = {"ts": now_ms(), "crop": "corn", "yield_jin": 20000, "plot": NEW_PLOT}
            pub.send(f"nongyun/v1/{SCALE}/yield", record)

        def counted() -> bool:
            status, ans = dep.get(f"/api/v1/yields?region={VILLAGE_B}&year={year}")
            return status == 200 and ans["total"]["records"] > 0

        ingest_s = until(counted, 60, "ingest attributes a record naming the plot to its village", send)
        print(f"\nplot add: CLI {cli_s:.1f} s; then web {web_s:.1f} s, ingest {ingest_s:.1f} s")
        assert web_s < 60 and ingest_s < 60
    finally:
        pub.close()


# -- the admin page: admins only, the same checks as the CLI, a change in force at once ----------

from tests.access_support import World, login, page_csrf, world  # noqa: E402, F401 (fixture)

ADMIN_PATHS = ["/admin/registry/devices", "/admin/registry/devices/qh-st-101200-1/move",
               "/admin/registry/devices/qh-st-101200-1/retire", "/admin/registry/plots",
               "/admin/registry/plots/P211204101200-1/move", "/admin/registry/plots/P211204101200-1/retire"]


@pytest.mark.parametrize("caller", ["village_viewer", "township_viewer", "township_editor"])
def test_the_registry_page_and_its_forms_are_403_for_non_admins(world: World, caller: str) -> None:  # noqa: F811
    client = world.clients[caller]
    assert client.get("/admin/registry").status_code == 403
    token = page_csrf(client, "/")
    for path in ADMIN_PATHS:
        resp = client.post(path, data={"csrf_token": token, "id": "x-1", "kind": "station",
                                       "village": "211204101200", "area_mu": "1"})
        assert resp.status_code == 403, path
    assert world.ctx.registry.find("x-1") is None and world.ctx.registry.find("qh-st-101200-1") is not None


def test_anonymous_is_sent_to_the_login_page(world: World) -> None:  # noqa: F811
    assert world.clients["anonymous"].get("/admin/registry").status_code == 302


def test_an_admin_adds_moves_and_retires_on_the_page(tmp_path: Path) -> None:
    from service.auth import open_accounts
    from service.context import build
    from service.settings import load
    from service.store.sqlite import SqliteStore
    from service.web import create_app
    from tests.access_support import PASSWORD

    settings = load(CONFIG, env={}, overrides={"store.data_dir": str(tmp_path / "data"), "web.auth": "required",
                                               "mqtt.url": f"mqtt://127.0.0.1:{free_port()}"})
    ctx = build(settings)
    open_accounts(settings.data_dir, ctx.tree).add("boss", PASSWORD, "admin", "211204", now_ms())
    store = SqliteStore(tmp_path / "store.sqlite3")
    try:
        client = create_app(ctx, store).test_client()
        assert login(client, "boss").status_code == 302
        page = client.get("/admin/registry?lang=en")
        assert page.status_code == 200 and "Devices and plots" in page.get_data(as_text=True)
        assert "设备与地块管理" in client.get("/admin/registry").get_data(as_text=True)
        token = page_csrf(client, "/admin/registry")
        added = client.post("/admin/registry/devices", data={"csrf_token": token, "id": "web-st-1", "kind": "station",
                                                              "village": VILLAGE_A, "metrics": "soil_moisture"})
        assert added.status_code == 201 and 'id="credential"' in added.get_data(as_text=True)
        assert client.get("/api/v1/devices/web-st-1").get_json()["village"] == VILLAGE_A  # this worker: at once
        dup = client.post("/admin/registry/devices", data={"csrf_token": token, "id": "web-st-1", "kind": "station",
                                                            "village": VILLAGE_A})
        assert dup.status_code == 400 and "编号有误" in dup.get_data(as_text=True)  # the page's words
        moved = client.post("/admin/registry/devices/web-st-1/move", data={"csrf_token": token, "village": VILLAGE_B})
        assert moved.status_code == 302 and ctx.registry.get("web-st-1").village == VILLAGE_B
        bad = client.post("/admin/registry/plots", data={"csrf_token": token, "id": "web-p-1",
                                                         "village": "211204999999", "area_mu": "3"})
        assert bad.status_code == 400 and "12 位村代码" in bad.get_data(as_text=True)
        plot = client.post("/admin/registry/plots", data={"csrf_token": token, "id": "web-p-1", "village": VILLAGE_B,
                                                          "area_mu": "3"})
        assert plot.status_code == 302 and ctx.land.plot("web-p-1") is not None
        assert client.post("/admin/registry/devices/web-st-1/retire", data={"csrf_token": token}).status_code == 302
        assert client.get("/api/v1/devices/web-st-1").status_code == 404
        no_csrf = client.post("/admin/registry/plots/web-p-1/retire", data={})
        assert no_csrf.status_code == 400 and ctx.land.plot("web-p-1") is not None
    finally:
        store.close()
