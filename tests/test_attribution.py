"""Attribution of yield records (DESIGN.md "Land"): plot → its village; else the named village; else the
device's village, counted as unattributed. Through the real Mosquitto and through the REST API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask.testing import FlaskClient

from service.context import Context
from service.ingest import connect
from service.payloads import PayloadDecoder
from service.store.base import InRegion, YieldsQuery
from service.store.sqlite import SqliteStore
from service.times import format_local, local_year, now_ms, year_bounds
from service.web import create_app
from tests.brokers import Mosquitto
from tests.land_support import HARVESTER, SCALE, SCALE_VILLAGE, V_FAR, V_NAMED, V_NEAR, ZX, land_ctx
from tests.test_ingest import Publisher, client_id, publisher, settled, wait_for  # noqa: F401 - fixture

YIELD_TOPIC = f"nongyun/v1/{SCALE}/yield"


@pytest.fixture
def ctx(tmp_path: Path) -> Context:
    return land_ctx(tmp_path)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(tmp_path / "store" / "nongyun.sqlite3")
    yield s
    s.close()


def harvest(**extra: Any) -> dict[str, Any]:
    return {"ts": now_ms() - 60_000, "crop": "corn", "yield_jin": 12_000, **extra}


def through_broker(ctx: Context, mosquitto: Mosquitto, store: SqliteStore, publisher: Publisher,  # noqa: F811
                   *messages: tuple[str, dict[str, Any]]) -> Any:
    """Publish ``messages`` to a running ingest (the process's own decoder) and wait until committed."""
    settings = ctx.settings.with_overrides(mqtt_url=mosquitto.url, mqtt_client_id=client_id())
    ingest = connect(settings, PayloadDecoder(ctx.registry, ctx.catalogue, ctx.land, ctx.tree), store)
    ingest.start()
    try:
        assert ingest.wait_subscribed(10), "ingest did not subscribe"
        for topic, body in messages:
            publisher.send(topic, body)
        publisher.flush()
        wait_for(settled(ingest, len(messages)), what="the messages committed")
        return ingest.pipeline.stats()
    finally:
        ingest.stop()


def per_village(ctx: Context, store: SqliteStore) -> dict[str, tuple[int, float, float]]:
    start, end = year_bounds(local_year(now_ms(), ctx.settings.tz), ctx.settings.tz)
    q = YieldsQuery(InRegion("township", ZX), start, end, "village", ctx.settings.tz)
    return {t.key: (t.records, round(t.area_ha * 15, 6), t.yield_kg * 2) for t in store.yields(q)}


def unattributed(ctx: Context, store: SqliteStore) -> int:
    start, end = year_bounds(local_year(now_ms(), ctx.settings.tz), ctx.settings.tz)
    return store.yields_unattributed(YieldsQuery(InRegion("township", ZX), start, end, "village", ctx.settings.tz))


# -- through the real Mosquitto ------------------------------------------------------------------


def test_a_record_of_a_registered_plot_counts_in_the_plots_village_with_its_area(
        ctx: Context, mosquitto: Mosquitto, store: SqliteStore, publisher: Publisher) -> None:  # noqa: F811
    through_broker(ctx, mosquitto, store, publisher, (YIELD_TOPIC, harvest(plot="P-far")),
                   (f"nongyun/v1/{HARVESTER}/yield", harvest(plot="P-far", area_mu=5, ts=now_ms() - 1000)))
    assert per_village(ctx, store) == {V_FAR: (2, 35.0, 24_000.0)}  # 30 亩 from the plot + 5 亩 given
    assert unattributed(ctx, store) == 0


def test_a_scale_record_naming_another_village_counts_there_and_not_at_the_scale(
        ctx: Context, mosquitto: Mosquitto, store: SqliteStore, publisher: Publisher) -> None:  # noqa: F811
    through_broker(ctx, mosquitto, store, publisher, (YIELD_TOPIC, harvest(village=V_NAMED, area_mu=10)))
    got = per_village(ctx, store)
    assert got == {V_NAMED: (1, 10.0, 12_000.0)}
    assert SCALE_VILLAGE not in got
    [rec] = store.yield_records(InRegion("district", "211204"), 0, 2**62)
    assert (rec.device, rec.village, rec.unattributed) == (SCALE, V_NAMED, False)


def test_a_record_naming_neither_counts_at_the_device_as_unattributed(
        ctx: Context, mosquitto: Mosquitto, store: SqliteStore, publisher: Publisher) -> None:  # noqa: F811
    through_broker(ctx, mosquitto, store, publisher, (YIELD_TOPIC, harvest(area_mu=8)),
                   (YIELD_TOPIC, harvest(area_mu=6, village=V_NAMED, ts=now_ms() - 2000)))
    assert per_village(ctx, store) == {SCALE_VILLAGE: (1, 8.0, 12_000.0), V_NAMED: (1, 6.0, 12_000.0)}
    assert unattributed(ctx, store) == 1


@pytest.mark.parametrize(("reason", "record"), [
    ("unknown_plot", harvest(plot="P-nowhere", area_mu=3)),
    ("plot_mismatch", harvest(plot="P-far", village=V_NAMED)),
])
def test_land_rejections_are_recorded_with_their_reason(
        ctx: Context, mosquitto: Mosquitto, store: SqliteStore, publisher: Publisher,  # noqa: F811
        reason: str, record: dict[str, Any]) -> None:
    stats = through_broker(ctx, mosquitto, store, publisher, (YIELD_TOPIC, {**record, "ts": now_ms() - 5000}),
                           (YIELD_TOPIC, harvest(plot="P-near")))
    assert stats.rejected == {reason: 1}
    [rejection] = store.rejections()
    assert (rejection.reason, rejection.device) == (reason, SCALE)
    assert "P-" in rejection.detail
    assert store.counters().rejected == {reason: 1}
    assert per_village(ctx, store) == {V_NEAR: (1, 30.0, 12_000.0)}  # the good record beside it is stored


# -- through the REST API ------------------------------------------------------------------------


@pytest.fixture
def client(ctx: Context, store: SqliteStore) -> FlaskClient:
    return create_app(ctx, store).test_client()


def staff(**extra: Any) -> dict[str, Any]:
    ts = format_local(now_ms() - 60_000, ZoneInfo("Asia/Shanghai"))
    return {"ts": ts, "crop": "corn", "yield_jin": 9_000, **extra}


def test_a_staff_record_of_a_plot_takes_the_plots_area(client: FlaskClient, ctx: Context, store: SqliteStore) -> None:
    body = staff(village=V_FAR, plot="P-far")
    resp = client.post("/api/v1/yields", json=body)
    assert resp.status_code == 201, resp.get_data(as_text=True)
    assert resp.get_json()["village"] == V_FAR and resp.get_json()["plot"] == "P-far"
    assert per_village(ctx, store) == {V_FAR: (1, 30.0, 9_000.0)}


@pytest.mark.parametrize(("body", "reason"), [
    (staff(village=V_NAMED, plot="P-nowhere", area_mu=2), "unknown_plot"),
    (staff(village=V_NAMED, plot="P-far"), "plot_mismatch"),
])
def test_staff_land_errors_are_400_naming_the_field(client: FlaskClient, store: SqliteStore,
                                                     body: dict[str, Any], reason: str) -> None:
    resp = client.post("/api/v1/yields", json=body)
    assert resp.status_code == 400
    err = resp.get_json()["error"]
    assert (err["code"], err["field"]) == (reason, "plot")  # the decoder's reason is the code (issue 18)
    assert reason in err["message"]
    assert store.yield_records(InRegion("district", "211204"), 0, 2**62) == []


def test_yields_by_area_group_are_area_weighted_and_count_the_unattributed(
        client: FlaskClient, ctx: Context, mosquitto: Mosquitto, store: SqliteStore,
        publisher: Publisher) -> None:  # noqa: F811
    through_broker(ctx, mosquitto, store, publisher,
                   (YIELD_TOPIC, harvest(plot="P-far", yield_jin=33_000)),  # 30 亩, 1100 斤/亩
                   (YIELD_TOPIC, harvest(plot="P-plain", yield_jin=10_000, ts=now_ms() - 2000)),  # 10 亩
                   (YIELD_TOPIC, harvest(area_mu=20, yield_jin=20_000, ts=now_ms() - 3000)))  # unattributed
    ans = client.get(f"/api/v1/yields?region={ZX}&group_by=area_group").get_json()
    groups = {g["key"]: (g["name"], g["records"], g["area"], g["yield_per_area"]) for g in ans["groups"]}
    assert groups == {"gbz-2024": ("2024年高标准农田", 0, 0.0, None),
                      "kendi-demo": ("垦地共建示范区", 1, 30.0, 1100.0),
                      "": ("其他", 2, 30.0, 1000.0)}
    assert ans["total"] == {"records": 3, "area": 60.0, "yield": 63_000.0, "yield_per_area": 1050.0,
                            "unattributed_records": 1}
    demo = client.get(f"/api/v1/yields?region={ZX}&area_group=kendi-demo").get_json()
    assert [(g["key"], g["records"]) for g in demo["groups"] if g["records"]] == [(V_FAR, 1)]
    assert demo["total"]["records"] == 1 and demo["total"]["unattributed_records"] == 0
    bad = client.get(f"/api/v1/yields?region={ZX}&area_group=nope")
    assert bad.status_code == 400 and bad.get_json()["error"]["field"] == "area_group"


def test_plots_and_area_groups_answers(client: FlaskClient) -> None:
    plots = client.get(f"/api/v1/plots?region={ZX}&group=kendi-demo").get_json()
    assert plots["plots"] == [
        {"id": "P-far", "village": V_FAR, "name": "东岗地", "area": 30.0, "groups": ["kendi-demo"]},
        {"id": "P-near", "village": V_NEAR, "name": "", "area": 30.0, "groups": ["gbz-2024", "kendi-demo"]}]
    si = client.get(f"/api/v1/plots?region={V_NEAR}&unit=si").get_json()
    assert [(p["id"], p["area"]) for p in si["plots"]] == [("P-near", 2.0), ("P-plain", 0.67)]
    groups = client.get("/api/v1/area-groups").get_json()["groups"]
    assert groups == [{"id": "gbz-2024", "name": "2024年高标准农田", "kind": "high_standard", "plots": 1, "area": 30.0},
                      {"id": "kendi-demo", "name": "垦地共建示范区", "kind": "demo_zone", "plots": 2, "area": 60.0}]
    assert client.get("/api/v1/plots?group=nope").status_code == 400
    assert client.get("/api/v1/area-groups?region=211204102").get_json()["groups"][0]["plots"] == 0
