"""Every endpoint × every kind of caller: the status each must get, and no answer showing anything
outside the caller's scope (checked on the body, not only the status)."""

# ruff: noqa: F811  (fixtures imported from tests/access_support.py are parameters here)

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from service.records import Revision, YieldRecord, new_record_id
from service.store.base import Alert
from service.times import format_local, now_ms
from tests.access_support import (  # noqa: F401 (fixture)
    CALLERS,
    DEV_DMT,
    DEV_QYM,
    DEV_XJT,
    DISTRICT,
    EXTRA_CALLERS,
    PASSWORD,
    V_DMT,
    V_QYM,
    V_XJT,
    YML,
    ZX,
    World,
    leaks,
    login,
    page_csrf,
    world,
)

TZ = ZoneInfo("Asia/Shanghai")
ORDER = list(CALLERS)  # anonymous, village_viewer, township_viewer, township_editor, district_admin


@dataclass(frozen=True)
class Case:
    name: str
    method: str
    url: str | Callable[[World], str]
    expect: tuple[int, int, int, int, int]  # in ORDER
    body: Callable[[str], dict[str, Any]] | None = None


def _harvest(village: str) -> Callable[[str], dict[str, Any]]:
    def body(caller: str) -> dict[str, Any]:
        return {"village": village, "ts": format_local(now_ms() - 60_000, TZ),
                "crop": "corn", "area_mu": 1.5, "yield_jin": 1500 + ORDER.index(caller), "plot": f"P{village}-1"}
    return body


READINGS = "/api/v1/readings?metric=soil_moisture&every=1h"
BRIEF = "/api/v1/reports/moisture-weekly"  # a file: tests/test_moisture_brief.py checks its text for leaks
CASES = [
    # API: anonymous 401; viewers read inside (or above, narrowed) their scope; 403 beside it
    Case("regions tree", "GET", "/api/v1/regions", (401, 200, 200, 200, 200)),
    Case("region: district", "GET", f"/api/v1/regions/{DISTRICT}", (401, 200, 200, 200, 200)),
    Case("region: own township", "GET", f"/api/v1/regions/{ZX}", (401, 200, 200, 200, 200)),
    Case("region: other township", "GET", f"/api/v1/regions/{YML}", (401, 403, 403, 403, 200)),
    Case("region: own village", "GET", f"/api/v1/regions/{V_DMT}", (401, 200, 200, 200, 200)),
    Case("region: sibling village", "GET", f"/api/v1/regions/{V_XJT}", (401, 403, 200, 200, 200)),
    Case("yields: default", "GET", "/api/v1/yields", (401, 200, 200, 200, 200)),
    Case("yields: district by township", "GET", f"/api/v1/yields?region={DISTRICT}&group_by=township",
         (401, 200, 200, 200, 200)),
    Case("yields: district by village", "GET", f"/api/v1/yields?region={DISTRICT}&group_by=village",
         (401, 200, 200, 200, 200)),
    Case("yields: district by crop", "GET", f"/api/v1/yields?region={DISTRICT}&group_by=crop",
         (401, 200, 200, 200, 200)),
    Case("yields: other township", "GET", f"/api/v1/yields?region={YML}", (401, 403, 403, 403, 200)),
    Case("yields: sibling village", "GET", f"/api/v1/yields?region={V_XJT}", (401, 403, 200, 200, 200)),
    Case("yields: by area group", "GET", f"/api/v1/yields?region={DISTRICT}&group_by=area_group",
         (401, 200, 200, 200, 200)),
    Case("yields: one area group", "GET", f"/api/v1/yields?region={DISTRICT}&area_group=demo",
         (401, 200, 200, 200, 200)),
    Case("plots: district", "GET", f"/api/v1/plots?region={DISTRICT}", (401, 200, 200, 200, 200)),
    Case("plots: default, one group", "GET", "/api/v1/plots?group=demo", (401, 200, 200, 200, 200)),
    Case("plots: other township", "GET", f"/api/v1/plots?region={YML}", (401, 403, 403, 403, 200)),
    Case("plots: sibling village", "GET", f"/api/v1/plots?region={V_XJT}", (401, 403, 200, 200, 200)),
    Case("area groups: district", "GET", f"/api/v1/area-groups?region={DISTRICT}", (401, 200, 200, 200, 200)),
    Case("area groups: other township", "GET", f"/api/v1/area-groups?region={YML}", (401, 403, 403, 403, 200)),
    Case("enter harvest: own village", "POST", "/api/v1/yields", (401, 403, 403, 201, 201), _harvest(V_DMT)),
    Case("enter harvest: other township", "POST", "/api/v1/yields", (401, 403, 403, 403, 201), _harvest(V_QYM)),
    Case("readings: district", "GET", f"{READINGS}&region={DISTRICT}", (401, 200, 200, 200, 200)),
    Case("readings: district by device", "GET", f"{READINGS}&region={DISTRICT}&group_by=device",
         (401, 200, 200, 200, 200)),
    Case("readings: default region", "GET", READINGS, (401, 200, 200, 200, 200)),
    Case("readings: other township", "GET", f"{READINGS}&region={YML}", (401, 403, 403, 403, 200)),
    Case("moisture: district", "GET", f"/api/v1/moisture?region={DISTRICT}", (401, 200, 200, 200, 200)),
    Case("moisture: district by village", "GET", f"/api/v1/moisture?region={DISTRICT}&group_by=village",
         (401, 200, 200, 200, 200)),
    Case("moisture: default", "GET", "/api/v1/moisture", (401, 200, 200, 200, 200)),
    Case("moisture: other township", "GET", f"/api/v1/moisture?region={YML}", (401, 403, 403, 403, 200)),
    Case("moisture: sibling village", "GET", f"/api/v1/moisture?region={V_XJT}", (401, 403, 200, 200, 200)),
    Case("agromet: district", "GET", f"/api/v1/agromet?region={DISTRICT}", (401, 200, 200, 200, 200)),
    Case("agromet: district by village", "GET", f"/api/v1/agromet?region={DISTRICT}&group_by=village&year=2025",
         (401, 200, 200, 200, 200)),
    Case("agromet: default", "GET", "/api/v1/agromet", (401, 200, 200, 200, 200)),
    Case("agromet: other township", "GET", f"/api/v1/agromet?region={YML}", (401, 403, 403, 403, 200)),
    Case("agromet: sibling village", "GET", f"/api/v1/agromet?region={V_XJT}", (401, 403, 200, 200, 200)),
    Case("moisture brief: district pdf", "GET", f"{BRIEF}?region={DISTRICT}", (401, 200, 200, 200, 200)),
    Case("moisture brief: own township xlsx", "GET", f"{BRIEF}?region={ZX}&format=xlsx", (401, 200, 200, 200, 200)),
    Case("moisture brief: other township", "GET", f"{BRIEF}?region={YML}&format=xlsx", (401, 403, 403, 403, 200)),
    Case("moisture brief: sibling village", "GET", f"{BRIEF}?region={V_XJT}&format=xlsx", (401, 403, 200, 200, 200)),
    Case("devices: district", "GET", f"/api/v1/devices?region={DISTRICT}", (401, 200, 200, 200, 200)),
    Case("devices: default", "GET", "/api/v1/devices", (401, 200, 200, 200, 200)),
    Case("devices: other township", "GET", f"/api/v1/devices?region={YML}", (401, 403, 403, 403, 200)),
    Case("device: own", "GET", f"/api/v1/devices/{DEV_DMT}", (401, 200, 200, 200, 200)),
    Case("device: sibling village", "GET", f"/api/v1/devices/{DEV_XJT}", (401, 403, 200, 200, 200)),
    Case("device: other township", "GET", f"/api/v1/devices/{DEV_QYM}", (401, 403, 403, 403, 200)),
    Case("alerts: district", "GET", f"/api/v1/alerts?region={DISTRICT}", (401, 200, 200, 200, 200)),
    Case("alerts: default, active", "GET", "/api/v1/alerts?active=true", (401, 200, 200, 200, 200)),
    Case("alerts: other township", "GET", f"/api/v1/alerts?region={YML}", (401, 403, 403, 403, 200)),
    Case("ack: own village's alert", "POST", lambda w: f"/api/v1/alerts/{w.alerts[V_DMT]}/ack",
         (401, 403, 403, 200, 200), lambda caller: {}),
    Case("ack: other township's alert", "POST", lambda w: f"/api/v1/alerts/{w.alerts[V_QYM]}/ack",
         (401, 403, 403, 403, 200), lambda caller: {}),
    Case("health", "GET", "/api/v1/health", (401, 403, 403, 403, 200)),
    Case("rejections", "GET", "/api/v1/rejections", (401, 403, 403, 403, 200)),
    Case("openapi", "GET", "/api/v1/openapi.json", (200, 200, 200, 200, 200)),
    # pages: anonymous → the login page; above the scope → the scope's own page; beside it → 403
    Case("page: home", "GET", "/", (302, 200, 200, 200, 200)),
    Case("page: district", "GET", f"/r/{DISTRICT}", (302, 302, 302, 302, 200)),
    Case("page: own township", "GET", f"/r/{ZX}", (302, 302, 200, 200, 200)),
    Case("page: other township", "GET", f"/r/{YML}", (302, 403, 403, 403, 200)),
    Case("page: own village", "GET", f"/r/{V_DMT}", (302, 200, 200, 200, 200)),
    Case("page: sibling village", "GET", f"/r/{V_XJT}", (302, 403, 200, 200, 200)),
    Case("page: own device", "GET", f"/d/{DEV_DMT}", (302, 200, 200, 200, 200)),
    Case("page: other township's device", "GET", f"/d/{DEV_QYM}", (302, 403, 403, 403, 200)),
    Case("records: own township", "GET", f"/r/{ZX}/yield-records.json", (302, 200, 200, 200, 200)),
    Case("records: district", "GET", f"/r/{DISTRICT}/yield-records.json", (302, 200, 200, 200, 200)),
    Case("records: other township", "GET", f"/r/{YML}/yield-records.json", (302, 403, 403, 403, 200)),
    Case("export: district csv", "GET", f"/export/yields.csv?region={DISTRICT}", (302, 200, 200, 200, 200)),
    Case("export: other township", "GET", f"/export/yields.csv?region={YML}", (302, 403, 403, 403, 200)),
    Case("accounts page", "GET", "/admin/users", (302, 403, 403, 403, 200)),
    Case("own password page", "GET", "/account/password", (302, 200, 200, 200, 200)),
]


def _call(world: World, case: Case, caller: str) -> Any:
    client = world.clients[caller]
    url = case.url(world) if callable(case.url) else case.url
    headers = {}
    if case.method == "POST" and caller != "anonymous":
        headers["X-CSRFToken"] = page_csrf(client)
    body = case.body(caller) if case.body else None
    return client.open(url, method=case.method, json=body, headers=headers)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_every_endpoint_answers_each_caller_as_it_should_and_shows_nothing_outside_the_scope(
        world: World, case: Case) -> None:
    for caller, expected in zip(ORDER, case.expect, strict=True):
        resp = _call(world, case, caller)
        assert resp.status_code == expected, (caller, resp.get_data(as_text=True)[:300])
        spec = CALLERS[caller]
        text = resp.get_data().decode(errors="replace")  # a PDF or workbook is no UTF-8
        if resp.status_code == 302:
            assert "/login" in resp.location or resp.location.startswith("/r/"), resp.location
        if resp.status_code in (401, 403) and resp.mimetype == "application/json":
            err = resp.get_json()["error"]
            assert err["code"] == {401: "unauthorized", 403: "forbidden"}[resp.status_code]
            assert set(resp.get_json()) == {"error"}  # the error and nothing else
        if resp.status_code == 401:
            assert resp.headers["WWW-Authenticate"].startswith("Bearer")
        if spec is None or resp.status_code >= 300 or case.name == "openapi":
            continue
        scope = spec[1]
        body = resp.get_json() if resp.mimetype == "application/json" else text
        assert leaks(world.ctx, scope, body) == [], (caller, case.name)


# -- harvest records (issue 18): six callers, a village-scope editor among them -------------------------
RECORD_ORDER = [*ORDER, "village_editor"]
RECORD_SCOPES = {**CALLERS, **EXTRA_CALLERS}


def _fresh(world: World, village: str, by: str = "clerk") -> str:
    """A new staff record in ``village`` entered by ``by``: each caller changes a record of its own."""
    rec = YieldRecord("", village, now_ms() - 120_000, "corn", 0.1, 100.0, source="api", id=new_record_id(),
                      entered_by=by, updated=now_ms())
    world.store.save_record(rec, Revision(rec.record_id, 1, now_ms(), by, "", {}, "submitted"))
    return rec.record_id


def _rec(village: str, tail: str = "") -> Callable[[World], str]:
    return lambda w: f"/api/v1/yields/records/{_fresh(w, village)}{tail}"


RECORD_CASES = [
    Case("records list: own township", "GET", f"/api/v1/yields/records?region={ZX}", (401, 200, 200, 200, 200, 200)),
    Case("records list: default", "GET", "/api/v1/yields/records", (401, 200, 200, 200, 200, 200)),
    Case("records list: other township", "GET", f"/api/v1/yields/records?region={YML}",
         (401, 403, 403, 403, 200, 403)),
    Case("record: own village", "GET", _rec(V_DMT), (401, 200, 200, 200, 200, 200)),
    Case("record: sibling village", "GET", _rec(V_XJT), (401, 403, 200, 200, 200, 403)),
    Case("record: other township", "GET", _rec(V_QYM), (401, 403, 403, 403, 200, 403)),
    Case("record history: own village", "GET", _rec(V_DMT, "/history"), (401, 200, 200, 200, 200, 200)),
    Case("record history: other township", "GET", _rec(V_QYM, "/history"), (401, 403, 403, 403, 200, 403)),
    Case("correct: own village", "PATCH", _rec(V_DMT), (401, 403, 403, 200, 200, 200),
         lambda caller: {"yield_jin": 1500, "reason": "称错"}),
    Case("correct: sibling village", "PATCH", _rec(V_XJT), (401, 403, 403, 200, 200, 403),
         lambda caller: {"yield_jin": 1500, "reason": "称错"}),
    Case("correct: other township", "PATCH", _rec(V_QYM), (401, 403, 403, 403, 200, 403),
         lambda caller: {"yield_jin": 1500, "reason": "称错"}),
    Case("void: own village", "POST", _rec(V_DMT, "/void"), (401, 403, 403, 200, 200, 200),
         lambda caller: {"reason": "重复"}),
    Case("void: other township", "POST", _rec(V_QYM, "/void"), (401, 403, 403, 403, 200, 403),
         lambda caller: {"reason": "重复"}),
    Case("review: own village", "POST", _rec(V_DMT, "/review"), (401, 403, 403, 200, 200, 403),
         lambda caller: {"decision": "approve", "comment": "已核"}),
    Case("review: other township", "POST", _rec(V_QYM, "/review"), (401, 403, 403, 403, 200, 403),
         lambda caller: {"decision": "return"}),
]


@pytest.mark.parametrize("case", RECORD_CASES, ids=[c.name for c in RECORD_CASES])
def test_every_record_endpoint_answers_six_callers_as_it_should(world: World, case: Case) -> None:
    for caller, expected in zip(RECORD_ORDER, case.expect, strict=True):
        client = world.clients[caller]
        url = case.url(world) if callable(case.url) else case.url
        headers = {"X-CSRFToken": page_csrf(client)} if case.method != "GET" and caller != "anonymous" else {}
        resp = client.open(url, method=case.method, json=case.body(caller) if case.body else None, headers=headers)
        assert resp.status_code == expected, (caller, resp.get_data(as_text=True)[:300])
        if resp.status_code in (401, 403):
            assert set(resp.get_json()) == {"error"}
            assert resp.get_json()["error"]["code"] == {401: "unauthorized", 403: "forbidden"}[resp.status_code]
        spec = RECORD_SCOPES[caller]
        if spec is not None and resp.status_code == 200:
            assert leaks(world.ctx, spec[1], resp.get_json()) == [], (caller, case.name)


def test_a_reviewer_cannot_approve_a_record_they_entered_and_a_village_editor_is_told_why(world: World) -> None:
    for caller in ("township_editor", "district_admin"):
        url = f"/api/v1/yields/records/{_fresh(world, V_DMT, by=caller)}/review"
        client = world.clients[caller]
        resp = client.post(url, json={"decision": "approve"}, headers={"X-CSRFToken": page_csrf(client)})
        assert resp.status_code == 403 and "不能审核自己录入的记录" in resp.get_json()["error"]["message"]
    client = world.clients["village_editor"]
    resp = client.post(f"/api/v1/yields/records/{_fresh(world, V_DMT)}/review", json={"decision": "approve"},
                       headers={"X-CSRFToken": page_csrf(client)})
    assert resp.status_code == 403 and "村级账号不能审核" in resp.get_json()["error"]["message"]


def test_an_entry_records_the_account_that_entered_it(world: World) -> None:
    client = world.clients["village_editor"]
    body = {"village": V_DMT, "ts": format_local(now_ms() - 30_000, TZ), "crop": "corn", "area_mu": 1,
            "yield_jin": 1234}
    resp = client.post("/api/v1/yields", json=body, headers={"X-CSRFToken": page_csrf(client)})
    assert resp.status_code == 201, resp.get_data(as_text=True)
    got = _get(world, "village_editor", f"/api/v1/yields/records/{resp.get_json()['id']}")
    assert (got["entered_by"], got["source"], got["status"]) == ("village_editor", "staff", "submitted")


def _get(world: World, caller: str, url: str) -> Any:
    resp = world.clients[caller].get(url)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return resp.get_json()


def test_a_township_asking_for_the_district_sees_its_township_and_the_answer_says_so(world: World) -> None:
    ans = _get(world, "township_viewer", f"/api/v1/yields?region={DISTRICT}&group_by=township&unit=cn")
    assert ans["scope"] == ZX and ans["region"] == DISTRICT
    assert [g["key"] for g in ans["groups"]] == [ZX]
    seeded = ans["groups"][0]
    assert ans["total"]["yield"] == seeded["yield"] >= 12_000 + 22_000  # plus what the matrix's editors entered
    assert seeded["records"] >= 2  # DMT and XJT's harvests, plus what the editor entered
    admin = _get(world, "district_admin", f"/api/v1/yields?region={DISTRICT}&group_by=township")
    assert "scope" not in admin  # nothing was cut away
    by_key = {g["key"]: g for g in admin["groups"]}
    assert by_key[YML]["yield"] >= 50_000 and len(admin["groups"]) == 5
    assert by_key[ZX] == seeded


def test_a_village_viewer_sees_only_its_village_in_every_aggregate(world: World) -> None:
    tree = _get(world, "village_viewer", "/api/v1/regions")
    assert tree["scope"] == V_DMT
    assert [t["code"] for t in tree["children"]] == [ZX]
    assert [v["code"] for v in tree["children"][0]["children"]] == [V_DMT]
    node = _get(world, "village_viewer", f"/api/v1/regions/{ZX}")
    assert node["scope"] == V_DMT and [c["code"] for c in node["children"]] == [V_DMT]
    assert node["devices"]["total"] == len(world.ctx.registry.under(V_DMT))
    village_only = _get(world, "village_viewer", f"/api/v1/yields?region={ZX}&group_by=village")
    assert [g["key"] for g in village_only["groups"]] == [V_DMT]
    readings = _get(world, "village_viewer", f"/api/v1/readings?metric=soil_moisture&region={DISTRICT}"
                                             "&group_by=device")
    assert {s["key"] for s in readings["series"]} == {DEV_DMT} and readings["scope"] == V_DMT
    devices = _get(world, "village_viewer", "/api/v1/devices")
    assert {d["village"] for d in devices["devices"]} == {V_DMT} and devices["scope"] == V_DMT
    alerts = _get(world, "village_viewer", "/api/v1/alerts")
    assert {a["region"] for a in alerts["alerts"]} <= {V_DMT}
    assert any(a["kind"] == "drought" for a in alerts["alerts"])


def test_township_admin_sees_only_rejections_of_its_own_devices(world: World) -> None:
    world.accounts.add("zx-admin", PASSWORD, "admin", ZX, now_ms())
    client = world.app.test_client()
    assert login(client, "zx-admin").status_code == 302
    mine = client.get("/api/v1/rejections").get_json()
    assert {r["device"] for r in mine["rejections"]} == {DEV_DMT} and mine["scope"] == ZX
    assert client.get(f"/api/v1/rejections?device={DEV_QYM}").status_code == 403
    every = _get(world, "district_admin", "/api/v1/rejections")
    assert {r["device"] for r in every["rejections"]} >= {DEV_DMT, DEV_QYM, "not-registered"}


def test_a_viewer_gets_no_harvest_form_and_an_editor_does(world: World) -> None:
    viewer = world.clients["township_viewer"].get(f"/r/{V_DMT}").get_data(as_text=True)
    editor = world.clients["township_editor"].get(f"/r/{V_DMT}").get_data(as_text=True)
    assert 'id="harvest-form"' not in viewer and 'id="harvest-form"' in editor
    assert 'name="csrf-token"' in editor


def test_acknowledging_records_the_name_given_else_the_account(world: World) -> None:
    client = world.clients["township_editor"]
    typed = world.store.open_alert(Alert(f"frost:{V_DMT}", "frost", "critical", V_DMT, None, "霜冻", now_ms()))
    plain = world.store.open_alert(Alert(f"heat:{V_DMT}", "heat", "warning", V_DMT, None, "高温", now_ms()))
    assert typed is not None and plain is not None
    resp = client.post(f"/api/v1/alerts/{typed.id}/ack", json={"by": "王会计"},
                       headers={"X-CSRFToken": page_csrf(client)})
    assert resp.status_code == 200
    assert resp.get_json()["acked_by"] == "王会计"  # README: {"by": "王会计"}; the account is in the log
    again = client.post(f"/api/v1/alerts/{typed.id}/ack", json={}, headers={"X-CSRFToken": page_csrf(client)})
    assert again.get_json()["acked_by"] == "王会计"  # its first acknowledgement is kept
    unnamed = client.post(f"/api/v1/alerts/{plain.id}/ack", json={}, headers={"X-CSRFToken": page_csrf(client)})
    assert unnamed.get_json()["acked_by"] == "township_editor"  # no name given: the account
    for key in (typed.key, plain.key):  # the module's other tests see the seeded alerts only
        world.store.clear_alert(key, now_ms())


def test_plots_and_area_groups_count_only_what_lies_inside_the_scope(world: World) -> None:
    village = _get(world, "village_viewer", f"/api/v1/plots?region={DISTRICT}")
    assert [p["id"] for p in village["plots"]] == [f"P{V_DMT}-1"]
    assert village["scope"] == V_DMT
    admin = _get(world, "district_admin", f"/api/v1/plots?region={DISTRICT}")
    assert len(admin["plots"]) == 3 and "scope" not in admin
    town = _get(world, "township_viewer", f"/api/v1/area-groups?region={DISTRICT}&unit=cn")
    assert town["groups"] == [{"id": "demo", "name": "示范区", "kind": "demo_zone", "plots": 2, "area": 200.0}]


def test_the_leak_check_itself_finds_what_lies_outside(world: World) -> None:
    """Guards the matrix: the district's full answers, read with a township's eyes, do leak."""
    whole = _get(world, "district_admin", f"/api/v1/yields?region={DISTRICT}&group_by=township")
    assert YML in leaks(world.ctx, ZX, whole)
    assert "杨木林子镇" in leaks(world.ctx, ZX, whole)
    devices = _get(world, "district_admin", "/api/v1/devices")
    assert DEV_QYM in leaks(world.ctx, ZX, devices)
    assert leaks(world.ctx, DISTRICT, devices) == []


ROW_OUT = "200, its row refused as out_of_scope"


def _ledger(village_name: str, township: str = "张相镇") -> bytes:
    ts = format_local(now_ms() - 86_400_000, TZ)[:16].replace("T", " ")
    header = "收获时间,乡镇（街道）,村（社区）,作物,地块,面积（亩）,产量（斤）"
    return f"{header}\r\n{ts},{township},{village_name},玉米,,10,11000\r\n".encode("utf-8-sig")


@pytest.mark.parametrize(("name", "ledger", "expect"), [
    # (anonymous, village_viewer, township_viewer, township_editor, district_admin, village_editor)
    ("own village", _ledger("大孟屯村"), (401, 403, 403, 200, 200, 200)),
    ("other township", _ledger("前杨木林子村", "杨木林子镇"), (401, 403, 403, ROW_OUT, 200, ROW_OUT)),
])
def test_the_ledger_import_answers_six_callers_as_it_should(world: World, name: str, ledger: bytes,
                                                             expect: tuple[int | str, ...]) -> None:
    """Editors and admins import inside their scope; a row of a village outside it is an error of the
    report (out_of_scope), so the file is refused whole and nothing is written."""
    for caller, expected in zip(RECORD_ORDER, expect, strict=True):
        client = world.clients[caller]
        headers = {"X-CSRFToken": page_csrf(client)} if caller != "anonymous" else {}
        resp = client.post("/api/v1/yields/import", query_string={"dry_run": "true"}, headers=headers,
                           content_type="multipart/form-data", data={"file": (io.BytesIO(ledger), "l.csv")})
        body = resp.get_json()
        refused = resp.status_code == 200 and [e["code"] for e in body["errors"]] == ["out_of_scope"]
        got: int | str = ROW_OUT if refused else resp.status_code
        assert got == expected, (caller, name, resp.get_data(as_text=True)[:300])
        if resp.status_code == 200:
            assert body["rejected"] == (1 if refused else 0) and body["rows"] == 1


@pytest.mark.parametrize(("path", "expect"), [
    # (anonymous, village_viewer, township_viewer, township_editor, district_admin, village_editor)
    ("/review", (302, 403, 403, 200, 200, 403)),  # a village editor never approves
    (f"/review?region={YML}", (302, 403, 403, 403, 200, 403)),
    ("/import", (302, 403, 403, 200, 200, 200)),
    (f"/import?region={YML}", (302, 403, 403, 403, 200, 403)),
])
def test_the_review_and_import_pages_open_for_whom_they_should(world: World, path: str,
                                                               expect: tuple[int, ...]) -> None:
    for caller, expected in zip(RECORD_ORDER, expect, strict=True):
        resp = world.clients[caller].get(path)
        assert resp.status_code == expected, (caller, path)
