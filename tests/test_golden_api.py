"""Golden answers: a fixed set of API calls over a seeded store at a fixed moment, compared with the
answers recorded before the read layer moved out of ``service/web`` (issue 16).

A refactor of the read models must not change one figure of what township staff and scripts get.
The clock is held still with time-machine (the system clock, not our code), so "today", "online"
and the default year are the same on every run. An intended change of an answer is recorded again
with ``NONGYUN_UPDATE_GOLDEN=1 scripts/test tests/test_golden_api.py`` and shows in the diff of
``tests/golden/api_answers.json``, call by call.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from flask.testing import FlaskClient

from service.auth import open_accounts
from service.context import build
from service.jobs.health import check as station_health_check
from service.records import Batch, Rejection
from service.settings import load
from service.store.sqlite import SqliteStore
from service.times import now_ms
from service.web import create_app
from tests.brokers import free_port
from tests.browser.seed import seed
from tests.conftest import CONFIG, REPO

GOLDEN = Path(__file__).parent / "golden" / "api_answers.json"
MOMENT = datetime(2026, 10, 20, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
D, T1, T2, V1, V2 = "211204", "211204101", "211204102", "211204101200", "211204102204"
START, END = "2026-10-17T00:00:00%2B08:00", "2026-10-20T00:00:00%2B08:00"

CALLS: list[str] = [
    # regions
    "/api/v1/regions",
    f"/api/v1/regions/{D}", f"/api/v1/regions/{T1}", f"/api/v1/regions/{V1}", f"/api/v1/regions/{V2}",
    # yields: every grouping, both units, both seasons, crop filter
    "/api/v1/yields", f"/api/v1/yields?region={D}&unit=si",
    f"/api/v1/yields?region={D}&group_by=township", f"/api/v1/yields?region={D}&group_by=village",
    f"/api/v1/yields?region={D}&group_by=crop", f"/api/v1/yields?region={D}&group_by=year",
    f"/api/v1/yields?region={D}&group_by=year&unit=si", f"/api/v1/yields?region={D}&year=2025",
    f"/api/v1/yields?region={D}&year=2025&group_by=crop&unit=si", f"/api/v1/yields?region={D}&crop=corn",
    f"/api/v1/yields?region={D}&crop=soybean&group_by=township", f"/api/v1/yields?region={T1}",
    f"/api/v1/yields?region={T1}&unit=si", f"/api/v1/yields?region={T1}&group_by=crop",
    f"/api/v1/yields?region={T1}&group_by=year", f"/api/v1/yields?region={T2}&year=2025&group_by=village",
    f"/api/v1/yields?region={V1}", f"/api/v1/yields?region={V1}&group_by=year&unit=si",
    f"/api/v1/yields?region={V2}&group_by=village",
    # readings: every agg, several windows and groupings, explicit and default ranges
    "/api/v1/readings?metric=soil_moisture",
    f"/api/v1/readings?region={D}&metric=air_temp&every=1d&agg=mean&start={START}&end={END}",
    f"/api/v1/readings?region={D}&metric=air_temp&every=1d&agg=min&start={START}&end={END}",
    f"/api/v1/readings?region={D}&metric=air_temp&every=1d&agg=max&start={START}&end={END}",
    f"/api/v1/readings?region={D}&metric=rainfall&every=1d&agg=sum&start={START}&end={END}",
    f"/api/v1/readings?region={D}&metric=rainfall&every=1d&agg=count&start={START}&end={END}",
    f"/api/v1/readings?region={D}&metric=soil_moisture&every=6h&agg=mean&group_by=township&start={START}",
    f"/api/v1/readings?region={D}&metric=soil_moisture&every=1d&group_by=village&start={START}&end={END}",
    f"/api/v1/readings?region={T1}&metric=soil_temp&every=1h&start=2026-10-19T00:00:00%2B08:00&end={END}",
    f"/api/v1/readings?region={T1}&metric=battery&every=1d&agg=min&group_by=device&start={START}",
    f"/api/v1/readings?region={T2}&metric=air_humidity&every=12h&agg=max&start={START}&end={END}",
    f"/api/v1/readings?region={V1}&metric=soil_moisture&every=1h&start=2026-10-19T12:00:00%2B08:00",
    f"/api/v1/readings?region={V1}&metric=light&every=10m&agg=max&start=2026-10-19T11:00:00%2B08:00"
    "&end=2026-10-19T13:00:00%2B08:00",
    f"/api/v1/readings?region={V2}&metric=wind_speed&every=1d&agg=mean&group_by=device&start={START}&end={END}",
    f"/api/v1/readings?region={D}&metric=soil_ph&every=1w&agg=mean&start=2026-10-12T00:00:00%2B08:00",
    f"/api/v1/readings?region={D}&metric=co2&every=1d&start={START}",
    # devices and alerts
    "/api/v1/devices", f"/api/v1/devices?region={T1}", f"/api/v1/devices?region={V2}",
    "/api/v1/devices/qh-st-101203-1", "/api/v1/devices/qh-st-101203-2", "/api/v1/devices/qh-st-102204-1",
    "/api/v1/alerts", "/api/v1/alerts?active=true", "/api/v1/alerts?active=false", f"/api/v1/alerts?region={T2}",
    # operators
    "/api/v1/health", "/api/v1/rejections", "/api/v1/rejections?reason=out_of_range",
    "/api/v1/rejections?device=qh-st-101203-1&limit=1",
    # errors keep their shape
    "/api/v1/yields?region=211204999", "/api/v1/yields?year=abc", "/api/v1/yields?group_by=plot",
    "/api/v1/yields?region=211204&region=211204101", "/api/v1/readings?metric=nitrogen",
    f"/api/v1/readings?metric=air_temp&start={END}&end={START}", "/api/v1/devices/no-such-device",
    "/api/v1/regions/12345",
]
# The same district seen by a township's viewer: answers narrowed to the scope, or refused.
SCOPED_CALLS: list[str] = [
    "/api/v1/regions", f"/api/v1/regions/{T2}", f"/api/v1/yields?region={D}", f"/api/v1/yields?region={D}&unit=si",
    f"/api/v1/readings?region={D}&metric=air_temp&every=1d&start={START}&end={END}", f"/api/v1/devices?region={D}",
    f"/api/v1/alerts?region={D}", "/api/v1/health",
]
POSTS: list[tuple[str, dict[str, Any]]] = [
    ("/api/v1/yields", {"village": V1, "ts": "2026-10-19T15:00:00+08:00", "crop": "corn", "area_mu": 12.5,
                        "yield_jin": 14500}),  # no plot: config/plots.yaml names the plots that exist
    ("/api/v1/yields", {"village": V1, "ts": "2026-10-19T15:00:00+08:00", "crop": "corn", "area_ha": 1,
                        "yield_kg": 8000}),
    ("/api/v1/yields", {"village": V1, "ts": "2026-10-19T15:00:00+08:00", "crop": "corn", "area_mu": 1,
                        "area_ha": 1, "yield_jin": 100}),
]
AFTER_POSTS = [f"/api/v1/yields?region={T1}&group_by=village", f"/api/v1/yields?region={V1}"]


def _record(client: FlaskClient, method: str, url: str, headers: dict[str, str],
            body: dict[str, Any] | None = None) -> dict[str, Any]:
    resp = client.open(url, method=method, headers=headers, json=body)
    return {"call": f"{method} {url}" + (f" {json.dumps(body, ensure_ascii=False)}" if body else ""),
            "status": resp.status_code, "body": resp.get_json()}


def record(folder: Path) -> list[dict[str, Any]]:
    """Every call's answer over a store seeded at MOMENT. Run in a process of its own (``answers``):
    holding the clock still there cannot stall the timers other tests' stores left running here."""
    with time_machine.travel(MOMENT, tick=False):
        settings = load(CONFIG, env={}, overrides={"store.data_dir": str(folder / "data"),
                                                   "mqtt.url": f"mqtt://127.0.0.1:{free_port()}"})
        ctx = build(settings)
        store = SqliteStore(folder / "store.sqlite3")
        seed(ctx, store)
        now = now_ms()
        store.write(Batch(worker="golden", messages=3, rejections=[
            Rejection(now - 60_000, "nongyun/v1/qh-st-101203-1/telemetry", "qh-st-101203-1", "out_of_range",
                      "soil_moisture: 140 is outside 0–100", '{"ts": 1, "readings": {"soil_moisture": 140}}'),
            Rejection(now - 30_000, "nongyun/v1/ghost/telemetry", "ghost", "unknown_device", "ghost", "{}"),
            Rejection(now - 10_000, "nongyun/v1/qh-st-101203-1/telemetry", "qh-st-101203-1", "bad_json",
                      "line 1", "{"),
        ]))
        # the jobs runner's station-health job, which raises the device alerts the API lists
        station_health_check(ctx, store, ctx.alerts.station_health, now)
        accounts = open_accounts(settings.data_dir, ctx.tree)
        accounts.add("district-admin", "golden answers 1", "admin", D, now)
        accounts.add("township-viewer", "golden answers 2", "viewer", T1, now)
        admin = {"Authorization": f"Bearer {accounts.create_token('district-admin', 'golden', now).text}"}
        viewer = {"Authorization": f"Bearer {accounts.create_token('township-viewer', 'golden', now).text}"}
        client = create_app(ctx, store).test_client()
        got = [_record(client, "GET", url, admin) for url in CALLS]
        got += [{**_record(client, "GET", url, viewer), "as": "township-viewer"} for url in SCOPED_CALLS]
        got += [_record(client, "POST", url, admin, body) for url, body in POSTS]
        got += [_record(client, "GET", url, admin) for url in AFTER_POSTS]
        store.close()
    return got


@pytest.fixture(scope="module")
def answers(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    folder = tmp_path_factory.mktemp("golden")
    proc = subprocess.run([sys.executable, "-m", "tests.test_golden_api", str(folder)], cwd=REPO,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    found: list[dict[str, Any]] = json.loads(proc.stdout)
    return found


def _stable(entry: dict[str, Any]) -> dict[str, Any]:
    """Drop what differs between machines, not between versions: file paths and the closed port, and
    the fresh ids of staff entries (random by design, issue 18)."""
    text = re.sub(r'"s[0-9a-f]{19}"', '"<staff entry id>"', json.dumps(entry, ensure_ascii=False, sort_keys=True))
    if entry["call"].endswith("/health") and entry["status"] == 200:
        body = entry["body"]
        body["store"] = {k: v for k, v in body["store"].items() if k not in ("path", "size_bytes")}
        body["broker"] = {k: v for k, v in body["broker"].items() if k != "port"}
        return entry
    return json.loads(text)


def test_there_are_at_least_sixty_calls() -> None:
    assert len(CALLS) + len(SCOPED_CALLS) + len(POSTS) + len(AFTER_POSTS) >= 60


def test_every_answer_is_the_recorded_one(answers: list[dict[str, Any]]) -> None:
    got = [_stable(a) for a in answers]
    assert all(a["status"] < 500 for a in got), [a["call"] for a in got if a["status"] >= 500]
    if os.environ.get("NONGYUN_UPDATE_GOLDEN") == "1" or not GOLDEN.exists():
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(json.dumps(got, ensure_ascii=False, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        if os.environ.get("NONGYUN_UPDATE_GOLDEN") != "1":
            pytest.fail(f"recorded {GOLDEN.name} for the first time: commit it and run again")
    recorded = json.loads(GOLDEN.read_text(encoding="utf-8"))
    assert [a["call"] for a in got] == [a["call"] for a in recorded]
    for mine, theirs in zip(got, recorded, strict=True):
        assert mine == theirs, mine["call"]


if __name__ == "__main__":
    sys.stdout.write(json.dumps(record(Path(sys.argv[1])), ensure_ascii=False))
