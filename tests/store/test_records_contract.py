"""Harvest records on every backend (issue 18): ids, status, revisions, correct / void / review through
``service.harvest_records``, keyset listing, and aggregates that leave void records out — the same
test functions for SQLite and InfluxDB (the fake here; a real server when INFLUXDB_V2_URL is set)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from service import harvest_records as hr
from service.context import Context, build
from service.errors import Conflict
from service.payloads import PayloadDecoder
from service.records import SOURCE_DEVICE, SOURCE_STAFF, Batch, Revision, YieldRecord, new_record_id
from service.settings import load
from service.store.base import InRegion, RecordsQuery, Store, YieldsQuery, as_records_store
from service.times import now_ms
from tests.conftest import CONFIG
from tests.store.test_contract import DISTRICT, TZ, V1, V2, ZHANGXIANG

YEAR = 366 * 86_400_000
NOW = now_ms()
T = NOW - 3_600_000
TOWN = hr.Actor("town", "editor", ZHANGXIANG.code)


@pytest.fixture(scope="module")
def ctx(tmp_path_factory: pytest.TempPathFactory) -> Context:
    return build(load(CONFIG, env={}, overrides={"store.data_dir": str(tmp_path_factory.mktemp("rc"))}))


def _decoder(ctx: Context) -> PayloadDecoder:
    return PayloadDecoder(ctx.registry, ctx.catalogue, ctx.land, ctx.tree)


def _totals(store: Store, region: InRegion = DISTRICT, group_by: str = "village",
            status: str | None = None) -> dict[str, tuple[int, float]]:
    q = YieldsQuery(region, T - YEAR // 2, T + YEAR // 2, group_by, TZ, status=status)  # type: ignore[arg-type]
    return {t.key: (t.records, round(t.yield_kg, 6)) for t in store.yields(q)}


def _all(store: Store, **kw: object) -> list[YieldRecord]:
    rs = as_records_store(store)
    assert rs is not None
    return rs.list_records(RecordsQuery(DISTRICT, T - YEAR, T + YEAR, **kw))  # type: ignore[arg-type]


def _staff(store: Store, village: str, ts: int, kg: float, by: str = "clerk") -> YieldRecord:
    rec = YieldRecord("", village, ts, "corn", 0.2, kg, source=SOURCE_STAFF, id=new_record_id(), entered_by=by,
                      updated=NOW)
    rs = as_records_store(store)
    assert rs is not None
    rs.save_record(rec, Revision(rec.record_id, 1, NOW, by, "", hr.diff(None, rec), "submitted"))
    return rec


def test_device_records_get_ids_from_their_identity_and_a_resend_is_one_record(store: Store) -> None:
    rec = YieldRecord("gs-1", V1, T, "corn", 1.0, 7_000.0, source=SOURCE_DEVICE)
    store.write(Batch(yields=[rec]))
    store.write(Batch(yields=[rec]))
    [listed] = _all(store)
    assert (listed.record_id, listed.status, listed.revision, listed.entered_by) == (rec.record_id, "submitted", 1, "")
    assert _totals(store) == {V1: (1, 7_000.0)}


def test_two_staff_entries_of_one_minute_are_two_records(store: Store) -> None:
    a, b = _staff(store, V1, T, 1000.0), _staff(store, V1, T, 1000.0)
    assert {r.record_id for r in _all(store)} == {a.record_id, b.record_id}
    assert _totals(store) == {V1: (2, 2000.0)}


def test_correct_void_review_and_history(store: Store, ctx: Context) -> None:
    rec = _staff(store, V1, T, 1200.0)
    other = _staff(store, V2, T + 1000, 900.0)
    fixed = hr.correct(ctx, store, _decoder(ctx), rec.record_id, {"yield_kg": 1300.0}, "复称", TOWN, NOW)
    assert _totals(store) == {V1: (1, 1300.0), V2: (1, 900.0)}
    assert _totals(store, ZHANGXIANG, "township") == {ZHANGXIANG.code: (2, 2200.0)}
    moved = hr.correct(ctx, store, _decoder(ctx), rec.record_id, {"village": V2, "ts": T + 5000}, "村填错", TOWN,
                       NOW + 1)
    assert (moved.village, moved.ts, moved.revision) == (V2, T + 5000, 3)
    assert _totals(store) == {V2: (2, 2200.0)}
    approved = hr.review(store, other.record_id, "approve", "已核", TOWN, NOW + 2)
    assert _totals(store, status="approved") == {V2: (1, 900.0)}
    hr.void(store, approved.record_id, "重复", TOWN, NOW + 3)
    assert _totals(store) == {V2: (1, 1300.0)} and _totals(store, status="approved") == {}
    with pytest.raises(Conflict) as caught:
        hr.review(store, other.record_id, "approve", "", TOWN, NOW + 4)
    assert caught.value.code == "void"
    assert len(_all(store)) == 2  # nothing deleted: the void one is listed with its status
    assert [r.record_id for r in _all(store, status="void")] == [other.record_id]
    got = as_records_store(store).get_record(rec.record_id)  # type: ignore[union-attr]
    assert got is not None and (got.village, got.yield_kg, got.revision) == (V2, 1300.0, 3)
    revs = hr.history(store, rec.record_id, TOWN)
    assert [(r.revision, r.reason) for r in revs] == [(1, ""), (2, "复称"), (3, "村填错")]
    assert revs[1].changes == {"yield_kg": [1200.0, 1300.0]} and revs[2].changes["village"] == [V1, V2]
    assert [r.status for r in hr.history(store, other.record_id, TOWN)] == ["submitted", "approved", "void"]
    assert fixed.record_id == moved.record_id == rec.record_id


def test_exports_leave_void_records_out(store: Store) -> None:
    keep, gone = _staff(store, V1, T, 1000.0), _staff(store, V1, T + 1, 2000.0)
    hr.void(store, gone.record_id, "作废", TOWN, NOW)
    assert [r.record_id for r in store.yield_records(DISTRICT, T - 10, T + 10)] == [keep.record_id]


def test_a_device_record_corrected_in_place_keeps_its_id_and_counts_once(store: Store, ctx: Context) -> None:
    rec = YieldRecord("gs-1", V1, T, "corn", 1.0, 7_000.0, source=SOURCE_DEVICE)
    store.write(Batch(yields=[rec]))
    hr.correct(ctx, store, _decoder(ctx), rec.record_id, {"yield_kg": 6_500.0}, "复称", TOWN, NOW)
    assert _totals(store) == {V1: (1, 6_500.0)}
    [listed] = _all(store)
    assert (listed.record_id, listed.device, listed.revision) == (rec.record_id, "gs-1", 2)
    assert [r.revision for r in hr.history(store, rec.record_id, TOWN)] == [1, 2]


def test_listing_is_newest_first_by_time_and_id_and_pages_by_keyset(store: Store) -> None:
    made = [_staff(store, V1 if k % 2 else V2, T + (k // 3) * 1000, 100.0 + k) for k in range(9)]
    expected = sorted(made, key=lambda r: (r.ts, r.record_id), reverse=True)
    pages: list[YieldRecord] = []
    after = None
    while True:
        page = _all(store, limit=4, after=after)
        pages += page
        if len(page) < 4:
            break
        after = (page[-1].ts, page[-1].record_id)
    assert [r.record_id for r in pages] == [r.record_id for r in expected]
    only_v1 = as_records_store(store).list_records(  # type: ignore[union-attr]
        RecordsQuery(InRegion("village", V1), T - YEAR, T + YEAR, 100))
    assert {r.village for r in only_v1} == {V1} and len(only_v1) == 4
    assert len(_all(store, sources=("api",))) == 9 and _all(store, sources=("mqtt", "mqtt_unattributed")) == []
    assert _all(store, crop="rice") == [] and _all(store, plot="P-x") == []


def test_a_stale_change_is_refused(store: Store) -> None:
    rec = _staff(store, V1, T, 1000.0)
    hr.void(store, rec.record_id, "作废", TOWN, NOW)
    late = replace(rec, status="approved", revision=2)
    with pytest.raises(Conflict):
        as_records_store(store).save_record(  # type: ignore[union-attr]
            late, Revision(rec.record_id, 2, NOW, "x", "", {}, "approved"), rec)
