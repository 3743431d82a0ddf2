"""The store calls land attribution needs (DESIGN.md "Land"): per-plot sums and the unattributed count,
the same test functions for every backend."""

from __future__ import annotations

from service.records import SOURCE_DEVICE, SOURCE_STAFF, SOURCE_UNATTRIBUTED, Batch, YieldRecord
from service.store.base import InRegion, Store, YieldsQuery
from tests.store.test_contract import DISTRICT, T0, TZ, V1, V2, V_OTHER, ZHANGXIANG

YEAR = 366 * 86_400_000


def yq(region: InRegion = DISTRICT, group_by: str = "plot", crop: str | None = None) -> YieldsQuery:
    return YieldsQuery(region, T0 - YEAR // 2, T0 + YEAR // 2, group_by, TZ, crop)  # type: ignore[arg-type]


def _seed(store: Store) -> None:
    store.write(Batch(yields=[
        YieldRecord("gs-1", V1, T0, "corn", 2.0, 16_000.0, "P-1", source=SOURCE_DEVICE),
        YieldRecord("gs-1", V1, T0 + 1000, "corn", 1.0, 7_000.0, "P-1", source=SOURCE_DEVICE),
        YieldRecord("hv-1", V2, T0, "corn", 3.0, 21_000.0, "P-2", source=SOURCE_DEVICE),
        YieldRecord("gs-1", V2, T0 + 2000, "rice", 1.5, 9_000.0, "", source=SOURCE_DEVICE),  # named village
        YieldRecord("gs-1", V1, T0 + 3000, "corn", 0.5, 3_000.0, "", source=SOURCE_UNATTRIBUTED),
        YieldRecord("gs-9", V_OTHER, T0, "rice", 1.0, 5_000.0, "", source=SOURCE_UNATTRIBUTED),
        YieldRecord("", V_OTHER, T0 + 5000, "corn", 1.0, 6_000.0, "", source=SOURCE_STAFF),
    ]))


def test_per_plot_sums(store: Store) -> None:
    _seed(store)
    got = {t.key: (t.records, round(t.area_ha, 6), round(t.yield_kg, 6)) for t in store.yields(yq())}
    assert got == {"P-1": (2, 3.0, 23_000.0), "P-2": (1, 3.0, 21_000.0), "": (4, 4.0, 23_000.0)}
    town = {t.key: t.records for t in store.yields(yq(ZHANGXIANG))}
    assert town == {"P-1": 2, "P-2": 1, "": 2}
    rice = {t.key: t.records for t in store.yields(yq(crop="rice"))}
    assert rice == {"": 2}


def test_unattributed_count_follows_region_and_crop(store: Store) -> None:
    _seed(store)
    assert store.yields_unattributed(yq()) == 2
    assert store.yields_unattributed(yq(ZHANGXIANG)) == 1
    assert store.yields_unattributed(yq(InRegion("village", V2))) == 0
    assert store.yields_unattributed(yq(crop="rice")) == 1
    assert store.yields_unattributed(yq(crop="soybean")) == 0


def test_a_rewritten_record_takes_its_new_source(store: Store) -> None:
    rec = YieldRecord("gs-1", V1, T0, "corn", 1.0, 7_000.0, "", source=SOURCE_UNATTRIBUTED)
    store.write(Batch(yields=[rec]))
    assert store.yields_unattributed(yq()) == 1
    store.write(Batch(yields=[YieldRecord("gs-1", V1, T0, "corn", 1.0, 7_000.0, "", source=SOURCE_DEVICE)]))
    assert store.yields_unattributed(yq()) == 0
    assert [t.records for t in store.yields(yq())] == [1]
