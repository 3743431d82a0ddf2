"""End to end, the way a county uses it: devices publish through a real Mosquitto, ingest stores,
staff read the REST API. The numbers are checked against hand-computed answers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest
from flask.testing import FlaskClient

from service.context import Context
from service.store.sqlite import SqliteStore
from service.times import now_ms, parse_rfc3339
from service.web import create_app
from tests.brokers import Mosquitto
from tests.test_ingest import Publisher, running_ingest, wait_for

STATION = "qh-st-101203-1"
SCALE_A = ("qh-gs-101", "211204101200")  # grain scale of 大孟屯村, 张相镇
SCALE_B = ("qh-ym-101202", "211204101202")  # yield monitor in 谢家屯村, 张相镇


@pytest.fixture
def publisher(mosquitto: Mosquitto) -> Iterator[Publisher]:
    pub = Publisher(mosquitto)
    yield pub
    pub.close()


@pytest.fixture
def api(ctx: Context, store: SqliteStore) -> Iterator[FlaskClient]:
    app = create_app(ctx, store, broker_probe=lambda: {"reachable": True})
    with app.test_client() as client:
        yield client


def test_a_qos1_reading_is_readable_through_the_api_and_a_redelivery_counts_once(
        ctx: Context, mosquitto: Mosquitto, store: SqliteStore, publisher: Publisher, api: FlaskClient) -> None:
    ts = (now_ms() - 2 * 3_600_000) // 3_600_000 * 3_600_000 + 60_000
    record = {"ts": ts, "readings": {"soil_moisture": 27.5, "air_temp": 9.0}}
    with running_ingest(ctx, mosquitto, store) as ingest:
        publisher.send(f"nongyun/v1/{STATION}/telemetry", record)
        publisher.send(f"nongyun/v1/{STATION}/telemetry", record)  # the same message, delivered twice
        publisher.flush()
        wait_for(lambda: ingest.pipeline.stats().received >= 2 and ingest.pipeline.stats().pending == 0,
                 what="both deliveries committed")
    start = datetime.fromtimestamp((ts - 3_600_000) / 1000, ctx.settings.tz).isoformat()
    answer = api.get(f"/api/v1/readings?region=211204101203&metric=soil_moisture&agg=count&every=1h&start={start}"
                     .replace("+", "%2B")).get_json()
    assert answer["series"][0]["key"] == "211204101203"
    assert [v for _, v in answer["series"][0]["points"]] == [1]
    mean = api.get(f"/api/v1/readings?region=211204101203&metric=soil_moisture&every=1h&start={start}"
                   .replace("+", "%2B")).get_json()
    assert [v for _, v in mean["series"][0]["points"]] == [27.5]


def test_township_yield_per_mu_is_area_weighted_and_units_agree(
        ctx: Context, mosquitto: Mosquitto, store: SqliteStore, publisher: Publisher, api: FlaskClient) -> None:
    year = datetime.now(ctx.settings.tz).year
    ts = f"{year}-01-01T00:30:00+08:00"  # still the old year in UTC: must count in `year`
    if parse_rfc3339(ts) > now_ms():  # pragma: no cover - only in the first half hour of a year
        pytest.skip("the new year's first half hour")
    # 10 亩 at 1,000 斤/亩 and 1 亩 at 2,000 斤/亩: Σyield/Σarea = 12,000/11 ≈ 1,090.9 斤/亩,
    # where a mean of the two ratios would say 1,500.
    with running_ingest(ctx, mosquitto, store) as ingest:
        publisher.send(f"nongyun/v1/{SCALE_A[0]}/yield", {"ts": ts, "crop": "corn", "area_mu": 10, "yield_jin": 10000})
        publisher.send(f"nongyun/v1/{SCALE_B[0]}/yield", {"ts": ts, "crop": "corn", "area_mu": 1, "yield_jin": 2000})
        publisher.flush()
        wait_for(lambda: ingest.pipeline.stats().received >= 2 and ingest.pipeline.stats().pending == 0,
                 what="yields committed")
    cn = api.get(f"/api/v1/yields?region=211204&group_by=township&year={year}").get_json()
    zhangxiang = next(g for g in cn["groups"] if g["key"] == "211204101")
    assert zhangxiang["records"] == 2
    assert zhangxiang["area"] == pytest.approx(11.0)
    assert zhangxiang["yield"] == pytest.approx(12000.0)
    assert zhangxiang["yield_per_area"] == pytest.approx(12000 / 11, abs=0.01)
    si = api.get(f"/api/v1/yields?region=211204&group_by=township&year={year}&unit=si").get_json()
    zx_si = next(g for g in si["groups"] if g["key"] == "211204101")
    assert zx_si["area"] == pytest.approx(11 / 15, abs=0.01)
    assert zx_si["yield"] == pytest.approx(6000.0)
    assert zx_si["yield_per_area"] * 2 / 15 == pytest.approx(zhangxiang["yield_per_area"], abs=0.01)
    previous = api.get(f"/api/v1/yields?region=211204&group_by=township&year={year - 1}").get_json()
    assert previous["total"]["records"] == 0
    by_village = api.get(f"/api/v1/yields?region=211204101&year={year}").get_json()
    assert {g["key"]: g["yield_per_area"] for g in by_village["groups"] if g["records"]} == {
        SCALE_A[1]: pytest.approx(1000.0), SCALE_B[1]: pytest.approx(2000.0)}
