"""``GET /api/v1/moisture`` over a real SQLite store: figures, grades in both languages, 400s, scope."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.context import Context, build
from service.queries.moisture import day_bounds
from service.records import Batch, Reading
from service.settings import Settings
from service.store.sqlite import SqliteStore
from service.times import local_date, now_ms
from tests.web_support import get_json

HOUR = 3_600_000
DAY = date(2026, 7, 15)
SAND = ("qh-st-101205-1", "211204101205")  # 东三台子村, sand: field capacity 14 % vol
CLAY = ("qh-st-102212-1", "211204102212")  # 打车沟村, clay: 40 % vol


def _write(store: SqliteStore, ctx: Context, day: date, rows: list[tuple[str, str, float, float]]) -> None:
    start, _ = day_bounds(day, 1, ctx)
    store.write(Batch(readings=[Reading(dev, village, start + (i + 1) * HOUR, {"soil_moisture": vol, "soil_temp": t})
                                for i, (dev, village, vol, t) in enumerate(rows)]))


@pytest.fixture
def app_ctx(settings: Settings) -> Context:
    return build(settings)


def test_the_district_per_township_and_its_total(client: FlaskClient, store: SqliteStore, app_ctx: Context) -> None:
    _write(store, app_ctx, DAY, [(*SAND, 5.6, 18.0), (*CLAY, 38.0, 18.0)])  # 40 % and 95 %
    ans = get_json(client, "/api/v1/moisture", date="2026-07-15")
    assert (ans["region"], ans["region_name"], ans["date"], ans["group_by"]) == ("211204", "清河区", "2026-07-15",
                                                                                  "township")
    assert "scope" not in ans
    by = {g["key"]: g for g in ans["groups"]}
    assert list(by) == [t.code for t in app_ctx.tree.district.children]
    zx, yml = by["211204101"], by["211204102"]
    assert (zx["relative_pct"], zx["grade"], zx["grade_en"], zx["drought"], zx["drought_en"]) == (
        40.0, "严重不足", "severely deficient", "重旱", "severe")
    assert (yml["relative_pct"], yml["grade"], yml["drought"]) == (95.0, "过多", "无旱")
    assert zx["stations"] == {"严重不足": 1} and yml["stations"] == {"过多": 1}
    assert by["211204001"]["relative_pct"] is None and by["211204001"]["grade"] is None
    total = ans["total"]
    assert total["relative_pct"] == 67.5 and total["grade"] == "适宜" and total["drought"] == "无旱"
    assert total["stations"] == {"过多": 1, "严重不足": 1}
    assert total["missing"] == sum(g["missing"] for g in ans["groups"]) > 40


def test_a_village_is_its_own_group_and_frozen_soil_is_counted(client: FlaskClient, store: SqliteStore,
                                                                app_ctx: Context) -> None:
    _write(store, app_ctx, DAY, [(*SAND, 3.0, -2.0)])
    ans = get_json(client, "/api/v1/moisture", region=SAND[1], date="2026-07-15")
    assert [g["key"] for g in ans["groups"]] == [SAND[1]] and ans["group_by"] == "village"
    g = ans["groups"][0]
    assert (g["frozen"], g["grade"], g["relative_pct"], g["stations"]) == (1, None, None, {})


def test_the_default_date_is_today_in_the_configured_zone(client: FlaskClient, store: SqliteStore,
                                                           app_ctx: Context) -> None:
    now = now_ms()
    store.write(Batch(readings=[Reading(SAND[0], SAND[1], now - 60_000, {"soil_moisture": 9.8, "soil_temp": 12.0})]))
    today = local_date(now - 60_000, app_ctx.settings.tz)
    ans = get_json(client, "/api/v1/moisture", region=SAND[1])
    if ans["date"] == today.isoformat():  # not the instant a day turned over
        assert ans["total"]["relative_pct"] == 70.0 and ans["total"]["grade"] == "适宜"


def test_group_by_village_over_a_township(client: FlaskClient, store: SqliteStore, app_ctx: Context) -> None:
    _write(store, app_ctx, DAY, [(*SAND, 7.7, 10.0)])  # 55 %
    ans = get_json(client, "/api/v1/moisture", region="211204101", date="2026-07-15", group_by="village")
    by = {g["key"]: g for g in ans["groups"]}
    assert list(by) == [v.code for v in app_ctx.tree.get("211204101").villages()]
    assert by[SAND[1]]["grade"] == "轻度不足" and by[SAND[1]]["drought"] == "轻旱"
    assert by[SAND[1]]["name"] == "东三台子村"


@pytest.mark.parametrize(("query", "field"), [
    ("date=2026-02-30", "date"), ("date=2026-7-15", "date"), ("date=15.07.2026", "date"), ("date=1999-12-31", "date"),
    ("date=", "date"), ("group_by=crop", "group_by"), ("region=12", "region"), ("days=7", "days"),
    ("date=2026-07-15&date=2026-07-16", "date")])
def test_bad_parameters_are_400_with_the_field(client: FlaskClient, query: str, field: str) -> None:
    resp = client.get(f"/api/v1/moisture?{query}")
    assert resp.status_code == 400, resp.get_data(as_text=True)
    err = resp.get_json()["error"]
    assert err["code"] == "bad_request" and err["field"] == field and err["message"]


def test_an_unknown_region_is_404(client: FlaskClient) -> None:
    resp = client.get("/api/v1/moisture?region=211204999")
    assert resp.status_code == 404 and resp.get_json()["error"]["code"] == "not_found"


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(st.text(max_size=20))
def test_no_date_text_is_a_500(client: FlaskClient, text: str) -> None:
    resp = client.get("/api/v1/moisture", query_string={"date": text})
    assert resp.status_code in (200, 400)
    body: Any = resp.get_json()
    assert ("error" in body) == (resp.status_code == 400)


def test_documented_in_openapi(client: FlaskClient) -> None:
    doc = get_json(client, "/api/v1/openapi.json")
    op = doc["paths"]["/api/v1/moisture"]["get"]
    params = {p["name"]: p for p in op["parameters"]}
    assert set(params) == {"region", "date", "group_by"}
    assert params["date"]["schema"]["format"] == "date"
    assert {"400", "401", "403", "404"} <= set(op["responses"])
