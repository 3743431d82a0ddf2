"""Harvest records through the REST API on a real SQLite store (issue 18): entries never overwrite each
other, duplicates are refused with the existing id, corrections and voids change every tier's totals
in the next answer, history keeps every revision, listing pages by cursor."""

# ruff: noqa: F811  (fixtures imported from tests/test_api_support.py are parameters here)

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.errors import BadInput
from service.queries.records import decode_cursor, encode_cursor
from service.records import Batch, YieldRecord
from service.store.sqlite import SqliteStore
from service.times import format_local, local_year, now_ms
from tests.test_api_support import TZ, api_ctx, api_settings, app, client, get_json, store  # noqa: F401

V, V2 = "211204101200", "211204101202"
ZX, DISTRICT = "211204101", "211204"


def body(**extra: Any) -> dict[str, Any]:
    return {"village": V, "ts": format_local(now_ms() - 3_600_000, TZ), "crop": "corn", "area_mu": 2,
            "yield_jin": 2400, **extra}


def enter(client: FlaskClient, **extra: Any) -> str:
    resp = client.post("/api/v1/yields", json=body(**extra))
    assert resp.status_code == 201, resp.get_data(as_text=True)
    return str(resp.get_json()["id"])


def totals(client: FlaskClient, region: str, **query: Any) -> dict[str, Any]:
    ans = get_json(client, "/api/v1/yields", region=region, year=local_year(now_ms(), TZ), **query)
    return dict(ans["total"])


def test_two_weigh_tickets_of_the_same_minute_without_a_plot_are_two_records(client: FlaskClient) -> None:
    ts = format_local(now_ms() - 60_000, TZ)
    first, second = enter(client, ts=ts), enter(client, ts=ts, yield_jin=2600)
    assert first != second
    assert totals(client, V)["records"] == 2 and totals(client, V)["yield"] == 5000.0
    listed = get_json(client, "/api/v1/yields/records", region=V)["records"]
    assert {r["id"] for r in listed} == {first, second}


def test_an_identical_entry_is_refused_as_duplicate_naming_the_existing_record(client: FlaskClient) -> None:
    ts = format_local(now_ms() - 60_000, TZ)
    first = enter(client, ts=ts, plot="")
    resp = client.post("/api/v1/yields", json=body(ts=ts))
    assert resp.status_code == 409
    err = resp.get_json()["error"]
    assert (err["code"], err["id"]) == ("duplicate", first) and "已有相同的记录" in err["message"]
    assert totals(client, V)["records"] == 1
    # the same again after the first was voided is a record of its own
    assert client.post(f"/api/v1/yields/records/{first}/void", json={"reason": "录错"}).status_code == 200
    assert enter(client, ts=ts) != first


def test_a_correction_changes_village_township_and_district_totals_in_the_next_answer(client: FlaskClient) -> None:
    rid = enter(client)
    enter(client, village=V2)
    before = {r: totals(client, r)["yield"] for r in (V, ZX, DISTRICT)}
    resp = client.patch(f"/api/v1/yields/records/{rid}", json={"yield_jin": 3000, "reason": "称重单抄错"})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    out = resp.get_json()
    assert (out["yield"], out["revision"], out["status"], out["yield_per_area"]) == (3000.0, 2, "submitted", 1500.0)
    after = {r: totals(client, r)["yield"] for r in (V, ZX, DISTRICT)}
    assert {r: after[r] - before[r] for r in after} == {V: 600.0, ZX: 600.0, DISTRICT: 600.0}
    si = get_json(client, f"/api/v1/yields/records/{rid}", unit="si")
    assert (si["yield"], si["area"]) == (1500.0, round(2 / 15, 2))


def test_a_correction_moving_a_record_to_another_village_moves_it_in_every_group(client: FlaskClient) -> None:
    rid = enter(client)
    resp = client.patch(f"/api/v1/yields/records/{rid}", json={"village": V2, "reason": "村填错了"})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    by_village = get_json(client, "/api/v1/yields", region=ZX, group_by="village")
    groups = {g["key"]: g["records"] for g in by_village["groups"]}
    assert (groups[V], groups[V2]) == (0, 1)


def test_a_correction_of_last_years_record_shows_in_last_years_totals_the_comparison_reads(
        client: FlaskClient, store: SqliteStore) -> None:
    last_year = local_year(now_ms(), TZ) - 1
    ts = now_ms() - 300 * 86_400_000  # inside the decoder's year, usually in last calendar year
    year = local_year(ts, TZ)
    store.write(Batch(yields=[YieldRecord("qh-gs-101", V, ts, "corn", 1.0, 10_000.0, source="mqtt")]))
    [rec] = get_json(client, "/api/v1/yields/records", region=V, year=year)["records"]
    assert rec["source"] == "device" and rec["entered_by"] == "" and rec["id"].startswith("d")
    before = get_json(client, "/api/v1/yields", region=DISTRICT, year=year)["total"]["yield"]
    resp = client.patch(f"/api/v1/yields/records/{rec['id']}", json={"yield_kg": 9_000, "reason": "复称"})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert get_json(client, "/api/v1/yields", region=DISTRICT, year=year)["total"]["yield"] == before - 2000
    assert year in (last_year, last_year + 1)


def test_a_void_record_leaves_every_total_and_the_export_and_cannot_be_changed(client: FlaskClient) -> None:
    rid = enter(client, yield_jin=2468)
    assert "2468" in client.get(f"/export/yields.csv?region={V}").get_data(as_text=True)
    resp = client.post(f"/api/v1/yields/records/{rid}/void", json={"reason": "重复录入"})
    assert resp.status_code == 200 and resp.get_json()["status"] == "void"
    assert all(totals(client, r)["records"] == 0 for r in (V, ZX, DISTRICT))
    assert "2468" not in client.get(f"/export/yields.csv?region={V}").get_data(as_text=True)
    for url, payload in ((f"/api/v1/yields/records/{rid}", {"yield_jin": 1, "reason": "x"}),
                         (f"/api/v1/yields/records/{rid}/review", {"decision": "approve"}),
                         (f"/api/v1/yields/records/{rid}/void", {"reason": "again"})):
        method = "PATCH" if url.endswith(rid) else "POST"
        refused = client.open(url, method=method, json=payload)
        assert refused.status_code == 409 and refused.get_json()["error"]["code"] == "void", url
    listed = get_json(client, "/api/v1/yields/records", region=V, status="void")["records"]
    assert [r["id"] for r in listed] == [rid]


def test_history_keeps_every_revision_with_who_why_and_old_to_new(client: FlaskClient) -> None:
    rid = enter(client)
    client.patch(f"/api/v1/yields/records/{rid}", json={"area_mu": 3, "reason": "面积量错"})
    client.post(f"/api/v1/yields/records/{rid}/review", json={"decision": "approve", "comment": "已核"})
    client.patch(f"/api/v1/yields/records/{rid}", json={"yield_jin": 3000, "reason": "补称"})
    client.post(f"/api/v1/yields/records/{rid}/void", json={"reason": "作废"})
    revs = get_json(client, f"/api/v1/yields/records/{rid}/history")["revisions"]
    assert [(r["revision"], r["status"], r["reason"]) for r in revs] == [
        (1, "submitted", ""), (2, "submitted", "面积量错"), (3, "approved", "已核"), (4, "submitted", "补称"),
        (5, "void", "作废")]
    assert revs[0]["changes"]["yield_kg"] == [None, 1200.0]
    assert revs[1]["changes"] == {"area_ha": [2 / 15, 3 / 15]}
    assert revs[3]["changes"] == {"yield_kg": [1200.0, 1500.0], "status": ["approved", "submitted"]}
    assert revs[4]["changes"] == {"status": ["submitted", "void"]}


def test_status_approved_restricts_the_totals_to_approved_records(client: FlaskClient) -> None:
    rid = enter(client)
    enter(client, yield_jin=2000)
    assert totals(client, V, status="approved")["records"] == 0
    assert client.post(f"/api/v1/yields/records/{rid}/review", json={"decision": "approve"}).status_code == 200
    assert totals(client, V, status="approved")["records"] == 1
    assert totals(client, V, status="approved")["yield"] == 2400.0 and totals(client, V)["yield"] == 4400.0
    assert client.get("/api/v1/yields?status=submitted").status_code == 400


def test_listing_pages_by_cursor_through_every_record_once_newest_first(client: FlaskClient) -> None:
    base = now_ms() - 7_200_000
    ids = {enter(client, ts=base + k * 1000, yield_jin=2000 + k) for k in range(7)}
    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = get_json(client, "/api/v1/yields/records", region=V, limit=3, **({"cursor": cursor} if cursor else {}))
        assert len(page["records"]) <= 3
        seen += page["records"]
        cursor = page["next"]
        if cursor is None:
            break
    assert [r["id"] for r in seen if r["id"] in ids] == [r["id"] for r in seen] and {r["id"] for r in seen} == ids
    assert [r["ts"] for r in seen] == sorted((r["ts"] for r in seen), reverse=True)
    assert get_json(client, "/api/v1/yields/records", region=V, source="device")["records"] == []
    assert len(get_json(client, "/api/v1/yields/records", region=V, source="staff")["records"]) == 7
    for bad in ("%%%", "bm90LWEtY3Vyc29y"):  # not base64url / not ours
        err = client.get(f"/api/v1/yields/records?cursor={bad}").get_json()["error"]
        assert (err["code"], err["field"]) == ("bad_request", "cursor")
    assert client.get("/api/v1/yields/records?limit=1001").status_code == 400


def test_the_village_page_json_lists_every_record_with_ids_past_500(client: FlaskClient, store: SqliteStore) -> None:
    now = now_ms()
    store.write(Batch(yields=[YieldRecord("qh-gs-101", V, now - 1_000_000 - k * 1000, "corn", 0.1, 100.0 + k)
                              for k in range(1200)]))
    rows = get_json(client, f"/r/{V}/yield-records.json")["records"]
    assert len(rows) == 1200 and len({r["id"] for r in rows}) == 1200 and rows[0]["status"] == "submitted"


def test_unknown_ids_are_404_and_a_correction_needs_a_reason(client: FlaskClient) -> None:
    for rid in ("s0000", "x" * 65, "名字"):
        resp = client.get(f"/api/v1/yields/records/{rid}")
        assert resp.status_code == 404 and resp.get_json()["error"]["code"] == "not_found"
    rid = enter(client)
    no_reason = client.patch(f"/api/v1/yields/records/{rid}", json={"yield_jin": 3000})
    assert no_reason.status_code == 400 and no_reason.get_json()["error"]["field"] == "reason"
    nothing = client.patch(f"/api/v1/yields/records/{rid}", json={"yield_jin": 2400, "reason": "同样"})
    assert nothing.status_code == 400 and nothing.get_json()["error"]["code"] == "unchanged"
    bad = client.patch(f"/api/v1/yields/records/{rid}", json={"crop": "banana", "reason": "改作物"})
    assert bad.status_code == 400 and bad.get_json()["error"] == {
        "code": "unknown_crop", "message": bad.get_json()["error"]["message"], "field": "crop"}
    both = client.patch(f"/api/v1/yields/records/{rid}", json={"area_ha": 1, "area_mu": 2, "reason": "x"})
    assert both.status_code == 400 and both.get_json()["error"]["field"] in ("area_mu", "area_ha")
    assert get_json(client, f"/api/v1/yields/records/{rid}")["revision"] == 1


def test_a_redelivered_device_record_is_one_record_with_one_id(store: SqliteStore, client: FlaskClient) -> None:
    rec = YieldRecord("qh-gs-101", V, now_ms() - 60_000, "corn", 1.0, 5000.0, source="mqtt")
    store.write(Batch(yields=[rec]))
    store.write(Batch(yields=[rec]))
    [listed] = get_json(client, "/api/v1/yields/records", region=V)["records"]
    assert listed["id"] == rec.record_id
    # staff corrected it; the device's resend of the old message does not undo that
    client.patch(f"/api/v1/yields/records/{rec.record_id}", json={"yield_kg": 4000, "reason": "复称"})
    store.write(Batch(yields=[rec]))
    assert get_json(client, f"/api/v1/yields/records/{rec.record_id}", unit="si")["yield"] == 4000.0


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None, max_examples=150)
@given(st.text(max_size=80), st.text(max_size=70))
def test_any_cursor_or_record_id_is_answered_never_a_500(client: FlaskClient, cursor: str, rid: str) -> None:
    listed = client.get("/api/v1/yields/records", query_string={"cursor": cursor})
    assert listed.status_code in (200, 400), listed.get_data(as_text=True)
    if listed.status_code == 400:
        assert listed.get_json()["error"]["field"] == "cursor"
    one = client.get(f"/api/v1/yields/records/{quote(rid, safe='')}/history")
    assert one.status_code in (404, 405) or (not rid and one.status_code == 404), one.get_data(as_text=True)
    assert set(one.get_json()) == {"error"}
    patched = client.patch(f"/api/v1/yields/records/{quote(rid, safe='') or 'x'}",
                           json={"reason": cursor or "r", "yield_jin": 1})
    assert patched.status_code in (400, 404), patched.get_data(as_text=True)


def test_a_cursor_round_trips_and_a_forged_one_is_refused() -> None:
    rec = YieldRecord("", V, 1_700_000_000_123, "corn", 1.0, 1.0, id="sabc")
    assert decode_cursor(encode_cursor(rec)) == (1_700_000_000_123, "sabc")
    for forged in ("", "AAAA", encode_cursor(rec)[:-3] + "!!!"):
        with pytest.raises(BadInput):
            decode_cursor(forged)
