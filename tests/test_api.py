"""The REST API's happy paths against a real SQLite store, with exact numbers."""

# ruff: noqa: F811  (pytest fixtures imported from tests/test_api_support.py are parameters here)

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from service.context import Context
from service.jobs.health import check as station_health_check
from service.records import Rejection, StatusChange
from service.settings import Settings
from service.store.sqlite import SqliteStore
from service.times import DAY_MS, format_local, local_year, now_ms
from service.web import create_app, create_app_from_settings
from tests.test_api_support import (  # noqa: F401 (fixtures)
    TZ,
    api_ctx,
    api_settings,
    app,
    client,
    crop_yield,
    get_json,
    local_ms,
    reading,
    seed,
    store,
)

ZX, YML = "211204101", "211204102"  # 张相镇, 杨木林子镇
V_DMT, V_XJT, V_QYM = "211204101200", "211204101202", "211204102200"  # 大孟屯村, 谢家屯村, 前杨木林子村


# -- regions ------------------------------------------------------------------------------------


def test_region_tree_has_every_tier_with_chinese_names(client: FlaskClient) -> None:
    resp = client.get("/api/v1/regions")
    assert "清河区".encode() in resp.data  # ensure_ascii off: readable, not \\u escapes
    tree = resp.get_json()
    assert (tree["code"], tree["name"], tree["level"]) == ("211204", "清河区", "district")
    assert [t["code"] for t in tree["children"]] == ["211204001", "211204002", ZX, YML, "211204203"]
    zx = tree["children"][2]
    assert zx["name"] == "张相镇" and zx["level"] == "township"
    dmt = next(v for v in zx["children"] if v["code"] == V_DMT)
    assert dmt == {"code": V_DMT, "name": "大孟屯村", "level": "village", "children": []}


def test_region_node_counts_devices_and_summarises_latest_values(client: FlaskClient, store: SqliteStore) -> None:
    now = now_ms()
    seed(store, readings=[
        reading("qh-st-101200-1", V_DMT, now - 5 * 60_000, soil_moisture=20.0, battery=3.3),
        reading("qh-st-101200-2", V_DMT, now - 2 * 3_600_000, soil_moisture=25.0, battery=3.9),
        reading("qh-st-101202-1", V_XJT, now - 2 * DAY_MS, soil_moisture=99.0),  # older than 24 h: not summarised
    ])
    node = get_json(client, f"/api/v1/regions/{V_DMT}")
    assert node["parent"] == {"code": ZX, "name": "张相镇", "level": "township"}
    assert node["children"] == []
    assert node["devices"] == {"total": 3, "online": 1}  # two stations and a grain scale; one recent point
    assert node["latest"]["soil_moisture"]["value"] == 22.5
    assert node["latest"]["soil_moisture"]["devices"] == 2
    assert node["latest"]["soil_moisture"]["unit"] == "% vol"
    assert node["latest"]["battery"]["value"] == 3.6
    assert node["latest"]["soil_moisture"]["ts"] == format_local(now - 5 * 60_000, TZ)
    town = get_json(client, f"/api/v1/regions/{ZX}")
    assert town["latest"]["soil_moisture"]["value"] == 22.5  # the 2-day-old value stays out
    assert town["devices"]["total"] == 21 and town["devices"]["online"] == 1
    assert len(town["children"]) == 15


# -- yields -------------------------------------------------------------------------------------


@pytest.fixture
def harvest(store: SqliteStore) -> None:
    """Two villages of 张相镇 where the mean of per-village ratios (1100) differs from Σyield/Σarea (1020)."""
    seed(store, yields=[
        crop_yield(V_DMT, "2025-10-01T10:00", "corn", mu=10, jin=12_000),
        crop_yield(V_XJT, "2025-10-02T10:00", "corn", mu=90, jin=90_000),
        crop_yield(V_QYM, "2025-09-28T10:00", "soybean", mu=30, jin=9_000),
        crop_yield(V_DMT, "2026-01-01T00:30", "corn", mu=5, jin=6_000),  # 2025-12-31 16:30 UTC
        crop_yield(V_DMT, "2024-12-31T23:30", "corn", mu=1, jin=1_000),  # 2024-12-31 15:30 UTC
    ])


def _group(answer: dict[str, object], key: str) -> dict[str, object]:
    groups = answer["groups"]
    assert isinstance(groups, list)
    found = [g for g in groups if g["key"] == key]
    assert len(found) == 1, groups
    return found[0]  # type: ignore[no-any-return]


@pytest.mark.usefixtures("harvest")
def test_yields_by_township_are_area_weighted(client: FlaskClient) -> None:
    ans = get_json(client, "/api/v1/yields", region="211204", year=2025)
    assert ans["region"] == "211204" and ans["year"] == 2025 and ans["unit"] == "cn" and ans["group_by"] == "township"
    assert ans["units"] == {"area": "亩", "yield": "斤", "yield_per_area": "斤/亩"}
    assert [g["key"] for g in ans["groups"]] == ["211204001", "211204002", ZX, YML, "211204203"]
    assert _group(ans, ZX) == {"key": ZX, "name": "张相镇", "records": 2, "area": 100.0, "yield": 102000.0,
                               "yield_per_area": 1020.0}  # not (1200 + 1000) / 2 = 1100
    assert _group(ans, YML)["yield_per_area"] == 300.0
    assert _group(ans, "211204001") == {"key": "211204001", "name": "红旗街道", "records": 0, "area": 0.0,
                                        "yield": 0.0, "yield_per_area": None}
    assert ans["total"] == {"records": 3, "area": 130.0, "yield": 111000.0, "yield_per_area": 853.85,
                            "unattributed_records": 0}


@pytest.mark.usefixtures("harvest")
def test_township_defaults_to_villages_and_village_to_crops(client: FlaskClient) -> None:
    town = get_json(client, "/api/v1/yields", region=ZX, year=2025)
    assert town["group_by"] == "village" and len(town["groups"]) == 15
    assert _group(town, V_DMT)["yield_per_area"] == 1200.0 and _group(town, V_DMT)["name"] == "大孟屯村"
    assert _group(town, V_XJT)["yield_per_area"] == 1000.0
    village = get_json(client, "/api/v1/yields", region=V_DMT, year=2025)
    assert village["group_by"] == "crop"
    assert village["groups"] == [{"key": "corn", "name": "玉米", "records": 1, "area": 10.0, "yield": 12000.0,
                                  "yield_per_area": 1200.0}]


@pytest.mark.usefixtures("harvest")
def test_half_past_midnight_on_new_years_day_counts_in_the_new_year(client: FlaskClient) -> None:
    y2026 = get_json(client, "/api/v1/yields", region=V_DMT, year=2026)
    assert y2026["total"]["records"] == 1 and y2026["total"]["yield"] == 6000.0
    y2025 = get_json(client, "/api/v1/yields", region=V_DMT, year=2025)
    assert y2025["total"]["records"] == 1 and y2025["total"]["yield"] == 12000.0
    y2024 = get_json(client, "/api/v1/yields", region=V_DMT, year=2024)
    assert y2024["total"]["yield"] == 1000.0


@pytest.mark.usefixtures("harvest")
def test_cn_and_si_answers_agree(client: FlaskClient) -> None:
    cn = get_json(client, "/api/v1/yields", region="211204", year=2025, unit="cn")
    si = get_json(client, "/api/v1/yields", region="211204", year=2025, unit="si")
    assert si["units"] == {"area": "ha", "yield": "kg", "yield_per_area": "kg/ha"}
    zx_si = _group(si, ZX)
    assert zx_si["area"] == 6.67 and zx_si["yield"] == 51000.0 and zx_si["yield_per_area"] == 7650.0
    for a, b in zip([*cn["groups"], cn["total"]], [*si["groups"], si["total"]], strict=True):
        if a["yield_per_area"] is None:
            assert b["yield_per_area"] is None
            continue
        assert a["yield_per_area"] == pytest.approx(b["yield_per_area"] * 2 / 15, abs=0.01)
        assert a["area"] == pytest.approx(b["area"] * 15, abs=0.08)
        assert a["yield"] == pytest.approx(b["yield"] * 2, abs=0.01)


@pytest.mark.usefixtures("harvest")
def test_yields_by_crop_and_year_and_crop_filter(client: FlaskClient) -> None:
    crops = get_json(client, "/api/v1/yields", region="211204", year=2025, group_by="crop")
    assert [(g["key"], g["name"], g["records"]) for g in crops["groups"]] == [("corn", "玉米", 2),
                                                                             ("soybean", "大豆", 1)]
    years = get_json(client, "/api/v1/yields", region=V_DMT, group_by="year")
    assert years["year"] is None
    assert [(g["key"], g["name"], g["yield"]) for g in years["groups"]] == [
        ("2024", "2024", 1000.0), ("2025", "2025", 12000.0), ("2026", "2026", 6000.0)]
    soy = get_json(client, "/api/v1/yields", region="211204", year=2025, crop="soybean")
    assert soy["crop"] == "soybean" and soy["total"]["records"] == 1 and soy["total"]["yield_per_area"] == 300.0
    by_village = get_json(client, "/api/v1/yields", region="211204", year=2025, group_by="village")
    assert sum(g["records"] for g in by_village["groups"]) == 3


def test_yields_year_defaults_to_this_local_year(client: FlaskClient, store: SqliteStore) -> None:
    now = now_ms()
    seed(store, yields=[crop_yield(V_DMT, "2025-10-01T10:00", "corn", mu=2, jin=2000)])
    ans = get_json(client, "/api/v1/yields", region=V_DMT)
    assert ans["year"] == local_year(now, TZ)


def test_post_yield_stores_the_record_and_answers_in_the_request_units(client: FlaskClient) -> None:
    ts_ms = now_ms() - 3_600_000
    ts = format_local(ts_ms, TZ)
    body = {"village": V_DMT, "ts": ts, "crop": "corn", "area_mu": 12.5, "yield_jin": 15000,
            "moisture_pct": 28.5}  # no plot: config/plots.yaml names the plots that exist
    resp = client.post("/api/v1/yields", json=body)
    assert resp.status_code == 201, resp.get_data(as_text=True)
    stored = dict(resp.get_json())
    first_id = stored.pop("id")
    assert stored.pop("status") == "submitted"
    assert stored == {"village": V_DMT, "township": ZX, "ts": ts, "crop": "corn", "area_mu": 12.5,
                      "yield_jin": 15000.0, "plot": "", "moisture_pct": 28.5, "source": "api"}
    ans = get_json(client, "/api/v1/yields", region=V_DMT, year=local_year(ts_ms, TZ))
    assert ans["total"] == {"records": 1, "area": 12.5, "yield": 15000.0, "yield_per_area": 1200.0,
                            "unattributed_records": 0}
    # the same record again is refused as a duplicate of the first (issue 18), counted once
    again = client.post("/api/v1/yields", json=body)
    assert again.status_code == 409 and again.get_json()["error"]["id"] == first_id
    assert get_json(client, "/api/v1/yields", region=V_DMT, year=local_year(ts_ms, TZ))["total"]["records"] == 1


def test_post_yield_in_si_units(client: FlaskClient) -> None:
    ts_ms = now_ms() - 60_000
    body = {"village": V_XJT, "ts": ts_ms, "crop": "soybean", "area_ha": 2, "yield_kg": 4800}
    resp = client.post("/api/v1/yields", json=body)
    assert resp.status_code == 201, resp.get_data(as_text=True)
    out = resp.get_json()
    assert (out["area_ha"], out["yield_kg"], out["plot"], out["moisture_pct"]) == (2.0, 4800.0, "", None)
    assert "area_mu" not in out and "yield_jin" not in out
    ans = get_json(client, "/api/v1/yields", region=V_XJT, year=local_year(ts_ms, TZ), unit="cn")
    assert ans["total"]["area"] == 30.0 and ans["total"]["yield"] == 9600.0 and ans["total"]["yield_per_area"] == 320


# -- readings -----------------------------------------------------------------------------------


@pytest.fixture
def soil(store: SqliteStore) -> None:
    seed(store, readings=[
        reading("qh-st-101200-1", V_DMT, local_ms("2025-06-01T08:00"), soil_moisture=20.0),
        reading("qh-st-101200-1", V_DMT, local_ms("2025-06-01T08:10"), soil_moisture=22.0),
        reading("qh-st-101200-1", V_DMT, local_ms("2025-06-01T09:00"), soil_moisture=30.0),
        reading("qh-st-101200-2", V_DMT, local_ms("2025-06-01T08:00"), soil_moisture=24.0),
        reading("qh-st-101202-1", V_XJT, local_ms("2025-06-01T08:30"), soil_moisture=40.0),
        reading("qh-st-102200-1", V_QYM, local_ms("2025-06-01T08:00"), soil_moisture=10.0),
        reading("qh-st-102200-1", V_QYM, local_ms("2025-06-01T10:00"), soil_moisture=99.0),  # at end: excluded
    ])


WINDOW = {"start": "2025-06-01T08:00:00+08:00", "end": "2025-06-01T10:00:00+08:00"}


@pytest.mark.usefixtures("soil")
def test_readings_mean_per_township_weighs_every_sample(client: FlaskClient) -> None:
    ans = get_json(client, "/api/v1/readings", region="211204", metric="soil_moisture", **WINDOW)
    assert (ans["metric"], ans["unit"], ans["every"], ans["agg"], ans["group_by"]) == (
        "soil_moisture", "% vol", "1h", "mean", "township")
    assert ans["start"] == "2025-06-01T08:00:00+08:00" and ans["end"] == "2025-06-01T10:00:00+08:00"
    assert ans["series"] == [
        {"key": ZX, "name": "张相镇", "points": [["2025-06-01T08:00:00+08:00", 26.5],  # (20+22+24+40)/4
                                               ["2025-06-01T09:00:00+08:00", 30.0]]},
        {"key": YML, "name": "杨木林子镇", "points": [["2025-06-01T08:00:00+08:00", 10.0]]},
    ]


@pytest.mark.usefixtures("soil")
def test_readings_by_village_device_and_other_aggregates(client: FlaskClient) -> None:
    town = get_json(client, "/api/v1/readings", region=ZX, metric="soil_moisture", **WINDOW)
    assert town["group_by"] == "village"
    assert [(s["key"], s["name"], s["points"][0][1]) for s in town["series"]] == [
        (V_DMT, "大孟屯村", 22.0), (V_XJT, "谢家屯村", 40.0)]
    village = get_json(client, "/api/v1/readings", region=V_DMT, metric="soil_moisture", **WINDOW)
    assert village["group_by"] == "village" and [s["key"] for s in village["series"]] == [V_DMT]
    dev = get_json(client, "/api/v1/readings", region=V_DMT, metric="soil_moisture", group_by="device", agg="max",
                   **WINDOW)
    assert [(s["key"], [p[1] for p in s["points"]]) for s in dev["series"]] == [
        ("qh-st-101200-1", [22.0, 30.0]), ("qh-st-101200-2", [24.0])]
    count = get_json(client, "/api/v1/readings", region="211204", metric="soil_moisture", agg="count", every="1d",
                     start="2025-06-01T00:00:00+08:00", end="2025-06-02T00:00:00+08:00")
    assert count["every"] == "1d"
    assert count["series"][0]["points"] == [["2025-06-01T00:00:00+08:00", 5.0]]  # 张相镇: 4 + 1 samples
    assert count["series"][1]["points"] == [["2025-06-01T00:00:00+08:00", 2.0]]  # 10:00 is inside this day
    total = get_json(client, "/api/v1/readings", region="211204", metric="soil_moisture", agg="sum", every="30m",
                     **WINDOW)
    assert total["series"][0]["points"] == [["2025-06-01T08:00:00+08:00", 66.0], ["2025-06-01T08:30:00+08:00", 40.0],
                                            ["2025-06-01T09:00:00+08:00", 30.0]]


def test_readings_default_to_the_last_24_hours(client: FlaskClient, store: SqliteStore) -> None:
    now = now_ms()
    seed(store, readings=[reading("qh-st-101200-1", V_DMT, now - 3_600_000, air_temp=8.25),
                          reading("qh-st-101200-1", V_DMT, now - 2 * DAY_MS, air_temp=30.0)])
    ans = get_json(client, "/api/v1/readings", region=V_DMT, metric="air_temp")
    assert [p[1] for p in ans["series"][0]["points"]] == [8.25]


# -- devices and alerts -------------------------------------------------------------------------


@pytest.fixture
def fleet(store: SqliteStore) -> int:
    now = now_ms()
    seed(store, readings=[
        reading("qh-st-101200-1", V_DMT, now - 5 * 60_000, soil_moisture=20.0, battery=3.3),  # online, low battery
        reading("qh-st-101200-2", V_DMT, now - 2 * 3_600_000, soil_moisture=25.0, battery=3.9),  # silent 2 h
        reading("qh-st-101203-1", "211204101203", now - 60_000, air_temp=5.0),  # but said offline after
    ], statuses=[
        StatusChange("qh-st-101202-1", now - 10 * DAY_MS, True, V_XJT),  # connected for 10 days, no points
        StatusChange("qh-st-101203-1", now - 30_000, False, "211204101203"),
    ])
    return now


def test_devices_of_a_village_with_online_rule(client: FlaskClient, fleet: int) -> None:
    ans = get_json(client, "/api/v1/devices", region=V_DMT)
    by_id = {d["id"]: d for d in ans["devices"]}
    assert list(by_id) == ["qh-gs-101", "qh-st-101200-1", "qh-st-101200-2"]
    assert by_id["qh-st-101200-1"] == {
        "id": "qh-st-101200-1", "kind": "station", "village": V_DMT, "township": ZX,
        "metrics": ["soil_moisture", "soil_temp", "air_temp", "air_humidity", "rainfall", "light", "wind_speed",
                    "battery"],
        "last_seen": format_local(fleet - 5 * 60_000, TZ), "online": True}
    assert by_id["qh-st-101200-2"]["online"] is False  # 2 h > 3 × 600 s
    assert by_id["qh-gs-101"]["last_seen"] is None and by_id["qh-gs-101"]["online"] is False
    town = {d["id"]: d for d in get_json(client, "/api/v1/devices", region=ZX)["devices"]}
    # silent for 10 days: a retained "online" (the last will never fired) does not keep it online
    assert town["qh-st-101202-1"]["online"] is False
    assert town["qh-st-101203-1"]["online"] is False  # status offline wins over a fresh point
    assert len(get_json(client, "/api/v1/devices")["devices"]) == 69


def test_one_device(client: FlaskClient, fleet: int) -> None:
    dev = get_json(client, "/api/v1/devices/qh-st-101202-1")
    assert dev["online"] is False and dev["village"] == V_XJT  # silent for 10 days
    assert dev["last_seen"] == format_local(fleet - 10 * DAY_MS, TZ)


def test_alerts_are_the_stored_ones_with_numeric_ids_that_ack_accepts(
        client: FlaskClient, store: SqliteStore, api_ctx: Context, fleet: int) -> None:
    assert get_json(client, "/api/v1/alerts", region=V_DMT)["alerts"] == []  # nothing derived on the side
    station_health_check(api_ctx, store, api_ctx.alerts.station_health, fleet)  # the jobs runner's job
    ans = get_json(client, "/api/v1/alerts", region=V_DMT)
    by_key = {a["key"]: a for a in ans["alerts"]}
    assert set(by_key) == {"battery_low:qh-st-101200-1", "device_offline:qh-st-101200-2"}  # scales are not stations
    low = by_key["battery_low:qh-st-101200-1"]
    assert low["id"].isdigit() and low["kind"] == "battery_low" and low["region"] == V_DMT
    assert "3.30 V" in low["message"] and low["active"] is True and low["since"] == format_local(fleet - 300_000, TZ)
    assert low["threshold"] == api_ctx.alerts.station_health.battery_low_v  # config/alerts.toml, not a constant
    off = by_key["device_offline:qh-st-101200-2"]
    assert off["since"] == format_local(fleet - 2 * 3_600_000, TZ) and "大孟屯村" in off["message"]
    said_offline = get_json(client, "/api/v1/alerts", region="211204101203")["alerts"]
    assert said_offline[0]["since"] == format_local(fleet - 30_000, TZ)
    assert get_json(client, "/api/v1/alerts", region=V_DMT, active="false")["alerts"] == []
    assert len(get_json(client, "/api/v1/alerts", region=V_DMT, active="true")["alerts"]) == 2
    acked = client.post(f"/api/v1/alerts/{low['id']}/ack", json={"by": "王会计"})
    assert acked.status_code == 200, acked.get_data(as_text=True)
    listed = {a["id"]: a for a in get_json(client, "/api/v1/alerts", region=V_DMT)["alerts"]}
    assert listed[low["id"]]["acked_by"] == "王会计" and listed[low["id"]]["acked_at"] is not None
    assert client.post("/api/v1/alerts/999999/ack", json={}).status_code == 404


# -- health and rejections ----------------------------------------------------------------------


def _rejection(reason: str, device: str, ts: int) -> Rejection:
    return Rejection(ts, f"nongyun/v1/{device}/telemetry", device, reason, f"detail {reason}", "{}")


def test_health_reports_store_broker_and_counters(client: FlaskClient, store: SqliteStore) -> None:
    now = now_ms()
    seed(store, messages=3, worker="ingest-1",
         readings=[reading("qh-st-101200-1", V_DMT, now, air_temp=1.0)],
         rejections=[_rejection("unknown_metric", "qh-st-101200-1", now), _rejection("bad_json", "x", now)])
    ans = get_json(client, "/api/v1/health")
    assert ans["status"] == "degraded"  # the probe points at a closed port
    assert ans["store"]["ok"] is True and ans["store"]["backend"] == "sqlite"
    assert ans["broker"]["reachable"] is False and ans["broker"]["host"] == "127.0.0.1"
    ingest = ans["ingest"]
    assert (ingest["received"], ingest["accepted"]) == (3, 1)
    assert ingest["rejected"] == {"bad_json": 1, "unknown_metric": 1}
    assert list(ingest["workers"]) == ["ingest-1"]
    assert 0 <= ingest["lag_s"] < 60


def test_health_ok_when_the_broker_port_answers(api_ctx: Context, store: SqliteStore) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        ctx = Context(api_ctx.settings.with_overrides(mqtt_url=f"mqtt://127.0.0.1:{port}"), api_ctx.tree,
                      api_ctx.registry, api_ctx.catalogue)
        ans = get_json(create_app(ctx, store).test_client(), "/api/v1/health")
    assert ans["status"] == "ok" and ans["broker"] == {"reachable": True, "host": "127.0.0.1", "port": port,
                                                       "error": None}
    assert ans["ingest"]["lag_s"] is None and ans["ingest"]["workers"] == {}


def test_health_uses_an_injected_probe(api_ctx: Context, store: SqliteStore) -> None:
    app = create_app(api_ctx, store, broker_probe=lambda: {"reachable": True, "via": "test"})
    ans = get_json(app.test_client(), "/api/v1/health")
    assert ans["status"] == "ok" and ans["broker"]["via"] == "test"


def test_rejections_listing_filters(client: FlaskClient, store: SqliteStore) -> None:
    now = now_ms()
    seed(store, rejections=[_rejection("bad_json", "a", now - 3000), _rejection("out_of_range", "b", now - 2000),
                            _rejection("bad_json", "b", now - 1000)])
    all_ = get_json(client, "/api/v1/rejections")["rejections"]
    assert [(r["reason"], r["device"]) for r in all_] == [("bad_json", "b"), ("out_of_range", "b"), ("bad_json", "a")]
    assert all_[0] == {"ts": format_local(now - 1000, TZ), "topic": "nongyun/v1/b/telemetry", "device": "b",
                       "reason": "bad_json", "detail": "detail bad_json", "payload": "{}"}
    assert len(get_json(client, "/api/v1/rejections", reason="bad_json")["rejections"]) == 2
    assert len(get_json(client, "/api/v1/rejections", device="b", limit=1)["rejections"]) == 1
    assert get_json(client, "/api/v1/rejections", device="b", reason="bad_json")["rejections"][0]["device"] == "b"


def test_create_app_from_settings_opens_the_configured_store(api_settings: Settings, tmp_path: Path) -> None:
    app = create_app_from_settings(api_settings.with_overrides(store_data_dir=str(tmp_path / "fresh")))
    ans = get_json(app.test_client(), "/api/v1/health")
    assert ans["store"]["ok"] is True and ans["store"]["path"].startswith(str(tmp_path / "fresh"))
    assert app.extensions["nongyun"].store is app.extensions["nongyun"]["store"]
