"""The rules of ``service.harvest_records`` with real accounts' roles and scopes, and the schema step that
gave existing SQLite rows their ids (issue 18)."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service import harvest_records as hr
from service.context import Context, build
from service.errors import BadInput, Conflict, Forbidden
from service.payloads import PayloadDecoder
from service.records import Batch, YieldRecord, device_record_id
from service.settings import load
from service.store.base import InRegion, RecordsQuery
from service.store.sqlite import STORE_STEPS, SqliteStore
from service.times import format_local, now_ms
from tests.conftest import CONFIG

V, V_OTHER_TOWN = "211204101200", "211204102200"
ZX = "211204101"
FIXTURES = Path(__file__).parent / "fixtures"
CLERK = hr.Actor("village_clerk", "editor", V)
TOWN = hr.Actor("town_editor", "editor", ZX)
TOWN_ADMIN = hr.Actor("town_admin", "admin", ZX)
VIEWER = hr.Actor("viewer", "viewer", ZX)
DISTRICT = hr.Actor("district", "admin", "211204")


@pytest.fixture(scope="module")
def ctx(tmp_path_factory: pytest.TempPathFactory) -> Context:
    return build(load(CONFIG, env={}, overrides={"store.data_dir": str(tmp_path_factory.mktemp("rules"))}))


@pytest.fixture
def store(tmp_path: Path) -> SqliteStore:
    return SqliteStore(tmp_path / "rules.sqlite3")


def _enter(ctx: Context, store: SqliteStore, who: hr.Actor = CLERK, village: str = V, jin: float = 2400):
    body = {"village": village, "ts": format_local(now_ms() - 60_000, ctx.settings.tz), "crop": "corn",
            "area_mu": 2, "yield_jin": jin}
    return hr.enter(ctx, store, PayloadDecoder(ctx.registry, ctx.catalogue, ctx.land, ctx.tree), body, now_ms(), who)


def test_a_village_editor_never_approves_and_nobody_reviews_their_own_entry(ctx: Context, store: SqliteStore) -> None:
    by_clerk = _enter(ctx, store)
    with pytest.raises(Forbidden, match="村级账号不能审核"):
        hr.review(store, by_clerk.record_id, "approve", "", CLERK, now_ms())
    with pytest.raises(Forbidden, match="editor or admin"):
        hr.review(store, by_clerk.record_id, "approve", "", VIEWER, now_ms())
    by_town = _enter(ctx, store, TOWN, jin=2000)
    with pytest.raises(Forbidden, match="不能审核自己录入的记录"):
        hr.review(store, by_town.record_id, "approve", "", TOWN, now_ms())
    approved = hr.review(store, by_town.record_id, "approve", "ok", TOWN_ADMIN, now_ms())
    assert (approved.status, approved.revision) == ("approved", 2)
    returned = hr.review(store, by_clerk.record_id, "return", "面积不对", TOWN, now_ms())
    assert returned.status == "returned"


def test_a_correction_of_an_approved_record_sends_it_back_to_submitted(ctx: Context, store: SqliteStore) -> None:
    rec = _enter(ctx, store)
    hr.review(store, rec.record_id, "approve", "", TOWN, now_ms())
    decoder = PayloadDecoder(ctx.registry, ctx.catalogue, ctx.land, ctx.tree)
    fixed = hr.correct(ctx, store, decoder, rec.record_id, {"yield_jin": 2500}, "补称", CLERK, now_ms())
    assert (fixed.status, fixed.revision, fixed.yield_kg) == ("submitted", 3, 1250.0)
    assert hr.history(store, rec.record_id, CLERK)[-1].changes["status"] == ["approved", "submitted"]


def test_scope_is_checked_on_the_old_and_the_new_village(ctx: Context, store: SqliteStore) -> None:
    rec = _enter(ctx, store)
    decoder = PayloadDecoder(ctx.registry, ctx.catalogue, ctx.land, ctx.tree)
    with pytest.raises(Forbidden):
        hr.correct(ctx, store, decoder, rec.record_id, {"village": V_OTHER_TOWN}, "搬走", TOWN, now_ms())
    other = _enter(ctx, store, DISTRICT, village=V_OTHER_TOWN)
    for action in (lambda: hr.void(store, other.record_id, "x", TOWN, now_ms()),
                   lambda: hr.review(store, other.record_id, "approve", "", TOWN, now_ms()),
                   lambda: hr.get(store, other.record_id, TOWN)):
        with pytest.raises(Forbidden):
            action()
    with pytest.raises(Forbidden):
        _enter(ctx, store, TOWN, village=V_OTHER_TOWN)


def test_a_stale_revision_cannot_overwrite_a_newer_one(ctx: Context, store: SqliteStore) -> None:
    rec = _enter(ctx, store)
    hr.void(store, rec.record_id, "重复", TOWN, now_ms())
    stale = hr.Revision(rec.record_id, 2, now_ms(), "x", "late", {"status": ["submitted", "approved"]}, "approved")
    with pytest.raises(Conflict) as caught:
        store.save_record(rec, stale, rec)  # it was at revision 1 when read; it is at 2 now
    assert caught.value.code == "changed"
    assert store.get_record(rec.record_id).status == "void"  # type: ignore[union-attr]


def test_enter_many_writes_nothing_unless_every_body_is_valid_or_partial(ctx: Context, store: SqliteStore) -> None:
    decoder = PayloadDecoder(ctx.registry, ctx.catalogue, ctx.land, ctx.tree)
    ts = now_ms() - 120_000
    good = [{"village": V, "ts": ts + k, "crop": "corn", "area_mu": 1, "yield_jin": 1000 + k} for k in range(5)]
    bad = {"village": V, "ts": ts, "crop": "banana", "area_mu": 1, "yield_jin": 1000}
    region = RecordsQuery(InRegion("village", V), 0, 2**62, 100)
    results = hr.enter_many(ctx, store, decoder, [*good, bad, good[0]], TOWN, now_ms())
    assert [type(r.error).__name__ if r.error else None for r in results] == [None] * 5 + ["BadInput", "Conflict"]
    assert store.list_records(region) == []
    hr.enter_many(ctx, store, decoder, [*good, bad], TOWN, now_ms(), partial=True)
    assert len(store.list_records(region)) == 5
    again = hr.enter_many(ctx, store, decoder, good, TOWN, now_ms(), partial=True)
    assert {getattr(r.error, "code", None) for r in again} == {"duplicate"}  # the same rows again: stored once
    assert len(store.list_records(region)) == 5


def test_the_v1_fixture_upgrades_with_ids_derived_the_device_way(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite3"
    shutil.copy(FIXTURES / "store-v1.sqlite3", path)
    with sqlite3.connect(path) as conn:
        old = conn.execute("SELECT village, device, crop, plot, ts FROM yields ORDER BY ts").fetchall()
    store = SqliteStore(path)
    try:
        recs = store.list_records(RecordsQuery(InRegion("district", "211204"), 0, 2**62, 100))
        assert len(recs) == len(old) == 2
        assert {r.record_id for r in recs} == {device_record_id(str(v), d, c, p, ts) for v, d, c, p, ts in old}
        assert {(r.status, r.revision) for r in recs} == {("submitted", 1)}
        with sqlite3.connect(path) as conn:
            assert conn.execute("PRAGMA user_version").fetchone()[0] == len(STORE_STEPS)
            plan = " ".join(str(r) for r in conn.execute(
                "EXPLAIN QUERY PLAN SELECT id FROM yields WHERE village BETWEEN 1 AND 2 AND ts < 5 ORDER BY ts DESC"))
            assert "yields_by_village" in plan
    finally:
        store.close()


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None, max_examples=60)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=30), st.integers(-2**62, 2**62))
def test_device_ids_are_url_safe_ascii_and_stable(device: str, ts: int) -> None:
    rid = device_record_id(V, device, "corn", "", ts)
    assert rid == device_record_id(V, device, "corn", "", ts) and len(rid) == 20
    assert rid.isascii() and rid.isalnum()
    assert rid != device_record_id(V, device, "corn", "", ts + 1)


def test_a_record_with_an_unregistered_plot_label_can_still_be_corrected(ctx: Context, store: SqliteStore) -> None:
    """A free label from before plots were registered (or a retired plot): its yield can be corrected
    and the label stays; naming an unregistered plot in the correction itself is still refused."""
    old = YieldRecord("", V, now_ms() - 3_600_000, "corn", 2 / 15, 1200.0, plot="东-3", source="api",
                      id="s-legacy-1")
    store.write(Batch(yields=[old]))
    decoder = PayloadDecoder(ctx.registry, ctx.catalogue, ctx.land, ctx.tree)
    fixed = hr.correct(ctx, store, decoder, "s-legacy-1", {"yield_jin": 2500}, "补称", CLERK, now_ms())
    assert (fixed.plot, fixed.yield_kg, fixed.revision) == ("东-3", 1250.0, 2)
    with pytest.raises(BadInput) as refused:
        hr.correct(ctx, store, decoder, "s-legacy-1", {"plot": "西-9"}, "换地块", CLERK, now_ms())
    assert refused.value.code == "unknown_plot"
