"""The alerts panel's server side (issue 19): district, township and village pages carry it (base.html),
editors get the acknowledge button, its wording is Chinese by default and English with ``?lang=en``;
``GET /api/v1/alerts`` lists device alerts with numeric ids its ``/ack`` accepts, an acknowledgement
records who (the name given, else the account) and stays, and ``since`` is when the alert began."""

# ruff: noqa: F811  (fixtures imported from tests/access_support.py are parameters here)

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from service.jobs import health
from service.records import Batch, Reading
from service.times import format_local, now_ms
from service.web.i18n import STRINGS
from tests.access_support import DEV_XJT, DISTRICT, V_DMT, V_XJT, ZX, World, page_csrf, world  # noqa: F401

PANEL_KEYS = [k for k in STRINGS if k.startswith("alert")]


def html_of(world: World, caller: str, path: str) -> str:
    resp = world.clients[caller].get(path)
    assert resp.status_code == 200, resp.get_data(as_text=True)[:300]
    return resp.get_data(as_text=True)


def page_strings(html: str) -> dict[str, str]:
    found = re.search(r'<script type="application/json" id="page-data">(.*?)</script>', html, re.S)
    assert found
    strings: dict[str, str] = json.loads(found.group(1))["strings"]
    return strings


@pytest.mark.parametrize("path", [f"/r/{DISTRICT}", f"/r/{ZX}", f"/r/{V_DMT}"])
def test_district_township_and_village_pages_carry_the_panel(world: World, path: str) -> None:
    html = html_of(world, "district_admin", path)
    assert html.count('id="alerts"') == 1 and 'id="alerts-table"' in html
    assert html.count("/assets/alerts.js") == 1
    code = path.rsplit("/", 1)[1]
    assert f'data-region="{code}"' in html


def test_the_device_page_has_no_panel(world: World) -> None:
    html = html_of(world, "district_admin", f"/d/{DEV_XJT}")
    assert 'id="alerts"' not in html and "alerts.js" not in html


def test_only_editors_get_the_acknowledge_button(world: World) -> None:
    assert 'data-can-ack="1"' in html_of(world, "township_editor", f"/r/{ZX}")
    assert 'data-can-ack="1"' in html_of(world, "district_admin", f"/r/{ZX}")
    viewer = html_of(world, "township_viewer", f"/r/{ZX}")
    assert 'data-can-ack=""' in viewer


def test_the_panel_speaks_chinese_by_default_and_english_on_request(world: World) -> None:
    zh = html_of(world, "township_viewer", f"/r/{ZX}")
    en = html_of(world, "township_viewer", f"/r/{ZX}?lang=en")
    assert "当前告警" in zh and "开始时间" in zh and "Active alerts" in en and "Since" in en
    assert {k: page_strings(zh)[k] for k in PANEL_KEYS} == {k: STRINGS[k][0] for k in PANEL_KEYS}
    assert {k: page_strings(en)[k] for k in PANEL_KEYS} == {k: STRINGS[k][1] for k in PANEL_KEYS}
    assert all(re.search(r"[\u4e00-\u9fff]", STRINGS[k][0]) for k in PANEL_KEYS)
    assert not any(re.search(r"[\u4e00-\u9fff（）]", STRINGS[k][1]) for k in PANEL_KEYS)  # no 万斤, no （）


def test_alerts_js_shows_no_raw_api_message() -> None:
    """A refused acknowledgement is told in the page's own words (T.alert_ack_*), never err.message."""
    from pathlib import Path

    script = (Path(__file__).resolve().parent.parent / "service/web/static/alerts.js").read_text(encoding="utf-8")
    assert "err.message" not in script and ".message)" not in script.replace("a.message", "")


def _alerts(world: World, caller: str, region: str) -> list[dict[str, Any]]:
    resp = world.clients[caller].get(f"/api/v1/alerts?region={region}&active=true")
    assert resp.status_code == 200
    alerts: list[dict[str, Any]] = resp.get_json()["alerts"]
    return alerts


def _battery(world: World, ts: int, volts: float) -> None:
    world.store.write(Batch(readings=[Reading(DEV_XJT, V_XJT, ts, {"battery": volts, "soil_moisture": 21.0})]))
    health.check(world.ctx, world.store, world.ctx.alerts.station_health, ts + 60_000)


def test_a_device_alert_lists_with_an_ackable_id_whose_since_stays(world: World) -> None:
    began = now_ms() - 30 * 60_000
    _battery(world, began, 3.2)
    [low] = [a for a in _alerts(world, "township_editor", ZX) if a["kind"] == "battery_low"]
    assert low["id"].isdigit() and low["key"] == f"battery_low:{DEV_XJT}" and low["device"] == DEV_XJT
    assert low["since"] == format_local(began, world.ctx.settings.tz) and low["value"] == 3.2
    _battery(world, began + 20 * 60_000, 3.1)  # a newer, lower reading: the same alert, the same since
    [again] = [a for a in _alerts(world, "township_editor", ZX) if a["kind"] == "battery_low"]
    assert (again["id"], again["since"], again["value"]) == (low["id"], low["since"], 3.2)

    client = world.clients["township_editor"]
    resp = client.post(f"/api/v1/alerts/{low['id']}/ack", json={"by": "王会计"},
                       headers={"X-CSRFToken": page_csrf(client, f"/r/{ZX}")})
    assert resp.status_code == 200, resp.get_json()
    assert (resp.get_json()["acked_by"], resp.get_json()["active"]) == ("王会计", True)
    [listed] = [a for a in _alerts(world, "township_viewer", ZX) if a["id"] == low["id"]]
    assert listed["acked_by"] == "王会计" and listed["acked_at"] is not None and listed["since"] == low["since"]
    # the key-shaped id of old answers is a plain 404 naming the whole id, not a cut-off one
    wrong = client.post(f"/api/v1/alerts/battery_low:{DEV_XJT}/ack", json={},
                        headers={"X-CSRFToken": page_csrf(client, f"/r/{ZX}")})
    assert wrong.status_code == 404 and f"battery_low:{DEV_XJT}" in wrong.get_json()["error"]["message"]


def test_every_listed_alert_is_acknowledged_by_its_id_and_stays_acknowledged(world: World) -> None:
    client = world.clients["district_admin"]
    listed = _alerts(world, "district_admin", DISTRICT)
    assert listed, "the world seeds alerts"
    for a in listed:
        resp = client.post(f"/api/v1/alerts/{a['id']}/ack", json={},
                           headers={"X-CSRFToken": page_csrf(client, f"/r/{DISTRICT}")})
        assert resp.status_code == 200, (a, resp.get_json())
    after = {a["id"]: a for a in _alerts(world, "district_admin", DISTRICT)}
    assert set(after) == {a["id"] for a in listed}
    for a in listed:  # acknowledged now (by the name given earlier, else by this account), since unchanged
        assert after[a["id"]]["acked_at"] is not None and after[a["id"]]["since"] == a["since"]
        assert after[a["id"]]["acked_by"] == (a["acked_by"] or "district_admin")


def test_a_viewer_may_not_acknowledge(world: World) -> None:
    client = world.clients["township_viewer"]
    [first, *_] = _alerts(world, "township_viewer", ZX)
    resp = client.post(f"/api/v1/alerts/{first['id']}/ack", json={},
                       headers={"X-CSRFToken": page_csrf(client, f"/r/{ZX}")})
    assert resp.status_code == 403 and resp.get_json()["error"]["code"] == "forbidden"
