"""``GET /api/v1/agromet``: the hand-computed season of tests/test_agromet.py through the API, the same
answers from both store backends (SQLite and the InfluxDB fake), and a 400-class JSON error for
every bad parameter."""

# ruff: noqa: F811  (pytest fixtures imported from tests/test_api_support.py are parameters here)

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from flask.testing import FlaskClient

from service.agromet import same_day_last_year
from service.context import Context
from service.store.influx import InfluxStore
from service.store.sqlite import SqliteStore
from service.times import local_date, now_ms
from service.web import create_app
from tests.fake_influx import FakeInflux
from tests.store.influx_backends import fake_influx_store
from tests.test_agromet import V1, V2, ZX, seed_series
from tests.test_api_support import TZ, api_ctx, api_settings, app, client, get_json, store  # noqa: F401 (fixtures)

API = "/api/v1/agromet"
NOTHING = {"gdd10": None, "first_frost": None, "last_frost": None, "rain_mm": None, "days_since_rain5": None}


@pytest.fixture
def influx(fake: FakeInflux) -> Iterator[InfluxStore]:
    s = fake_influx_store(fake)
    yield s
    s.close()


def test_a_township_by_village_shows_the_hand_computed_season_and_last_year(client: FlaskClient,
                                                                           store: SqliteStore) -> None:
    seed_series(store)
    body = get_json(client, API, region=ZX, year=2025)
    assert {k: body[k] for k in ("region", "region_name", "year", "as_of", "last_year_as_of", "group_by")} == {
        "region": ZX, "region_name": "张相镇", "year": 2025, "as_of": "2025-12-31", "last_year_as_of": "2024-12-31",
        "group_by": "village"}
    assert "scope" not in body
    by = {g["key"]: g for g in body["groups"]}
    # the figures of tests/test_agromet.py::test_a_past_season_equals_the_hand_computation_in_local_days
    assert by[V1] == {"key": V1, "name": by[V1]["name"], "gdd10": 65.0, "first_frost": "2025-10-12",
                      "last_frost": "2025-05-05", "rain_mm": 17.4, "days_since_rain5": 169, "stations": 1,
                      "last_year": NOTHING}
    assert by[V2]["gdd10"] == 20.0 and by[V2]["last_frost"] is None and by[V2]["rain_mm"] == 20.0
    assert body["total"] == {"gdd10": 66.0, "first_frost": "2025-10-12", "last_frost": "2025-05-05", "rain_mm": 21.2,
                             "days_since_rain5": 169, "stations": 2, "last_year": NOTHING}
    quiet = [g for k, g in by.items() if k not in (V1, V2)]
    assert quiet and all(g["stations"] == 0 and g["gdd10"] is None for g in quiet)


def test_the_district_by_township_and_this_season_against_last_year(client: FlaskClient, store: SqliteStore) -> None:
    seed_series(store)
    body = get_json(client, API, year=2026)
    today = local_date(now_ms(), TZ)
    assert body["group_by"] == "township" and body["region"] == "211204"
    as_of = today if today.year == 2026 else date(2026, 12, 31)  # the season runs to today in its own year
    assert (body["as_of"], body["last_year_as_of"]) == (as_of.isoformat(), same_day_last_year(as_of).isoformat())
    zx = next(g for g in body["groups"] if g["key"] == ZX)
    # 2026 so far: the 00:30 reading of 1 January (-2.0) alone: 0.0 °C·d (measured), a frost on 1 January
    assert (zx["gdd10"], zx["last_frost"], zx["first_frost"], zx["rain_mm"]) == (0.0, "2026-01-01", None, None)
    # 同期: 2025 up to the same date; the township's days ≥ 10 °C of 2025 (tests/test_agromet.py)
    warm = {date(2025, 6, 1): 19.0, date(2025, 7, 15): 25.0, date(2025, 9, 20): 10.0, date(2025, 12, 31): 12.0}
    last = same_day_last_year(as_of)
    assert zx["last_year"]["gdd10"] == sum(v for d, v in warm.items() if d <= last)
    assert zx["last_year"]["first_frost"] == ("2025-10-12" if last >= date(2025, 10, 12) else None)
    assert body["total"]["last_year"] == zx["last_year"]  # the only township with stations


def test_both_backends_answer_alike(api_ctx: Context, store: SqliteStore, influx: InfluxStore) -> None:
    seed_series(store)
    seed_series(influx)
    sqlite_client = create_app(api_ctx, store).test_client()
    influx_client = create_app(api_ctx, influx).test_client()
    urls = [f"{API}?year=2025", f"{API}?year=2025&group_by=village", f"{API}?region={ZX}&year=2025",
            f"{API}?region={V1}&year=2026", f"{API}?region={V2}", f"{API}?year=2024&group_by=township", API]
    for url in urls:
        a, b = get_json(sqlite_client, url), get_json(influx_client, url)
        assert a == b, url
    total = get_json(influx_client, f"{API}?year=2025")["total"]
    assert (total["gdd10"], total["rain_mm"], total["last_frost"]) == (66.0, 21.2, "2025-05-05")  # not all null


def test_the_district_by_village_answers_quickly_on_both_backends(api_ctx: Context, store: SqliteStore,
                                                                  influx: InfluxStore) -> None:
    """54 groups × 3 daily series over two years: one store query each (the figure is in the report)."""
    seed_series(store)
    seed_series(influx)
    for s in (store, influx):
        c = create_app(api_ctx, s).test_client()
        t0 = time.perf_counter()
        body = get_json(c, API, year=2025, group_by="village")
        took = time.perf_counter() - t0
        assert len(body["groups"]) > 40 and body["total"]["gdd10"] == 66.0
        assert took < 20, (type(s).__name__, took)


@pytest.mark.parametrize(("query", "status", "field"), [
    ({"year": "1999"}, 400, "year"),
    ({"year": "2101"}, 400, "year"),
    ({"year": "twenty"}, 400, "year"),
    ({"year": str(local_date(now_ms(), TZ).year + 1)}, 400, "year"),
    ({"group_by": "device"}, 400, "group_by"),
    ({"group_by": "crop"}, 400, "group_by"),
    ({"region": "21120"}, 400, "region"),
    ({"region": "211204999"}, 404, None),
    ({"metric": "air_temp"}, 400, "metric"),
])
def test_every_bad_parameter_is_a_json_error_naming_it(client: FlaskClient, query: dict[str, str], status: int,
                                                       field: str | None) -> None:
    resp = client.get(API, query_string=query)
    assert resp.status_code == status, resp.get_data(as_text=True)
    err = resp.get_json()["error"]
    assert err["code"] == {400: "bad_request", 404: "not_found"}[status] and err["message"]
    assert err.get("field") == field


def test_a_repeated_parameter_and_a_future_year_say_why(client: FlaskClient) -> None:
    resp = client.get(f"{API}?year=2025&year=2024")
    assert resp.status_code == 400 and "once" in resp.get_json()["error"]["message"]
    nxt = local_date(now_ms(), TZ).year + 1
    err: dict[str, Any] = client.get(API, query_string={"year": nxt}).get_json()["error"]
    assert "年份不能晚于今年" in err["message"] and str(nxt) in err["message"]
