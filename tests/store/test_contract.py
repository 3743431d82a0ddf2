"""The storage contract of DESIGN.md, the same test functions for every backend."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from service.records import Batch, Reading, Rejection, StatusChange, YieldRecord
from service.store.base import InRegion, ReadingsQuery, Store, YieldsQuery
from service.times import parse_rfc3339, year_bounds

TZ = ZoneInfo("Asia/Shanghai")
DISTRICT = InRegion("district", "211204")
ZHANGXIANG = InRegion("township", "211204101")  # 张相镇
V1, V2 = "211204101203", "211204101204"  # two villages of 张相镇
V_OTHER = "211204102200"  # 前杨木林子村, 杨木林子镇
T0 = parse_rfc3339("2026-05-01T08:00:00+08:00")
HOUR = 3_600_000
DAY = 24 * HOUR


def q(metric: str = "soil_moisture", *, start: int = T0 - DAY, end: int = T0 + DAY, every: int = HOUR,
      agg: str = "mean", villages: InRegion = DISTRICT, group_by: str = "township") -> ReadingsQuery:
    return ReadingsQuery(metric, start, end, every, agg, villages, group_by, TZ)  # type: ignore[arg-type]


def reading(device: str, village: str, ts: int, **values: float) -> Reading:
    return Reading(device, village, ts, values)


def test_rewriting_a_point_replaces_it(store: Store) -> None:
    r = reading("st-a", V1, T0, soil_moisture=20.0)
    store.write(Batch(readings=[r]))
    store.write(Batch(readings=[r]))
    store.write(Batch(readings=[reading("st-a", V1, T0, soil_moisture=30.0)]))
    assert store.readings(q(agg="count")) == {"211204101": [(T0, 1.0)]}
    assert store.readings(q(agg="mean")) == {"211204101": [(T0, 30.0)]}


def test_fields_of_one_point_merge_like_influxdb(store: Store) -> None:
    store.write(Batch(readings=[reading("st-a", V1, T0, soil_moisture=20.0, air_temp=5.0)]))
    store.write(Batch(readings=[reading("st-a", V1, T0, air_temp=6.5)]))
    assert store.readings(q("soil_moisture")) == {"211204101": [(T0, 20.0)]}
    assert store.readings(q("air_temp")) == {"211204101": [(T0, 6.5)]}


def test_mean_weighs_every_sample_of_the_group(store: Store) -> None:
    # village 1: three samples 1, 2, 3; village 2: one sample 10. Township mean = 16/4 = 4,
    # where a mean of village means would say (2 + 10) / 2 = 6.
    store.write(Batch(readings=[
        reading("st-a", V1, T0 + 0, soil_moisture=1.0),
        reading("st-a", V1, T0 + 600_000, soil_moisture=2.0),
        reading("st-a", V1, T0 + 1_200_000, soil_moisture=3.0),
        reading("st-b", V2, T0 + 60_000, soil_moisture=10.0),
    ]))
    assert store.readings(q()) == {"211204101": [(T0, 4.0)]}
    by_village = store.readings(q(group_by="village"))
    assert by_village == {V1: [(T0, 2.0)], V2: [(T0, 10.0)]}


def test_every_aggregate(store: Store) -> None:
    values = [4.0, 1.0, 7.0, 2.0]
    store.write(Batch(readings=[reading("st-a", V1, T0 + i * 60_000, rainfall=v) for i, v in enumerate(values)]))
    for agg, expected in {"mean": 3.5, "min": 1.0, "max": 7.0, "sum": 14.0, "count": 4.0}.items():
        assert store.readings(q("rainfall", agg=agg)) == {"211204101": [(T0, expected)]}, agg


def test_daily_windows_start_at_local_midnight(store: Store) -> None:
    late = parse_rfc3339("2026-05-01T23:30:00+08:00")
    early = parse_rfc3339("2026-05-02T00:30:00+08:00")
    store.write(Batch(readings=[reading("st-a", V1, late, air_temp=10.0), reading("st-a", V1, early, air_temp=20.0)]))
    got = store.readings(q("air_temp", start=late - 2 * DAY, end=early + 2 * DAY, every=DAY))
    assert got == {"211204101": [(parse_rfc3339("2026-05-01T00:00:00+08:00"), 10.0),
                                 (parse_rfc3339("2026-05-02T00:00:00+08:00"), 20.0)]}


def test_groups_and_region_filter(store: Store) -> None:
    store.write(Batch(readings=[
        reading("st-a", V1, T0, soil_moisture=10.0),
        reading("st-b", V2, T0, soil_moisture=20.0),
        reading("st-c", V_OTHER, T0, soil_moisture=40.0),
    ]))
    assert store.readings(q(group_by="district")) == {"211204": [(T0, 70.0 / 3)]}
    assert store.readings(q(group_by="township")) == {"211204101": [(T0, 15.0)], "211204102": [(T0, 40.0)]}
    assert store.readings(q(group_by="device", villages=ZHANGXIANG)) == {"st-a": [(T0, 10.0)], "st-b": [(T0, 20.0)]}
    only_v2 = InRegion("village", V2)
    assert store.readings(q(group_by="village", villages=only_v2)) == {V2: [(T0, 20.0)]}


def test_time_range_is_half_open_and_unknown_metric_is_empty(store: Store) -> None:
    store.write(Batch(readings=[reading("st-a", V1, T0, soil_moisture=10.0),
                                reading("st-a", V1, T0 + HOUR, soil_moisture=20.0)]))
    assert store.readings(q(start=T0, end=T0 + HOUR)) == {"211204101": [(T0, 10.0)]}
    assert store.readings(q("co2")) == {}


def yield_rec(village: str, ts: int, area_ha: float, yield_kg: float, crop: str = "corn", device: str = "gs-1",
              plot: str = "") -> YieldRecord:
    return YieldRecord(device, village, ts, crop, area_ha, yield_kg, plot)


def yq(group_by: str, year: int = 2026, villages: InRegion = DISTRICT, crop: str | None = None) -> YieldsQuery:
    start, end = year_bounds(year, TZ)
    return YieldsQuery(villages, start, end, group_by, TZ, crop)  # type: ignore[arg-type]


def test_yield_totals_per_group(store: Store) -> None:
    harvest = parse_rfc3339("2026-10-05T10:00:00+08:00")
    store.write(Batch(yields=[
        yield_rec(V1, harvest, 1.0, 9000.0, plot="p1"),
        yield_rec(V1, harvest + 1000, 3.0, 24000.0, plot="p2"),
        yield_rec(V2, harvest, 2.0, 5000.0, crop="soybean"),
        yield_rec(V_OTHER, harvest, 4.0, 30000.0, device="ym-9"),
    ]))
    by_township = {t.key: t for t in store.yields(yq("township"))}
    assert set(by_township) == {"211204101", "211204102"}
    zx = by_township["211204101"]
    assert (zx.records, zx.area_ha, zx.yield_kg) == (3, 6.0, 38000.0)
    by_village = {t.key: (t.records, t.area_ha, t.yield_kg) for t in store.yields(yq("village", villages=ZHANGXIANG))}
    assert by_village == {V1: (2, 4.0, 33000.0), V2: (1, 2.0, 5000.0)}
    by_crop = {t.key: t.yield_kg for t in store.yields(yq("crop"))}
    assert by_crop == {"corn": 63000.0, "soybean": 5000.0}
    only_corn = {t.key: t.yield_kg for t in store.yields(yq("township", crop="corn"))}
    assert only_corn == {"211204101": 33000.0, "211204102": 30000.0}
    by_device = {t.key: t.records for t in store.yields(yq("device"))}
    assert by_device == {"gs-1": 3, "ym-9": 1}


def test_a_harvest_at_half_past_midnight_on_new_year_counts_in_the_new_year(store: Store) -> None:
    new_year = parse_rfc3339("2026-01-01T00:30:00+08:00")  # still 2025-12-31 in UTC
    old_year = parse_rfc3339("2025-12-31T23:30:00+08:00")
    store.write(Batch(yields=[yield_rec(V1, new_year, 1.0, 100.0), yield_rec(V1, old_year, 1.0, 7.0, plot="x")]))
    assert [(t.key, t.yield_kg) for t in store.yields(yq("district", year=2026))] == [("211204", 100.0)]
    assert [(t.key, t.yield_kg) for t in store.yields(yq("district", year=2025))] == [("211204", 7.0)]
    start, _ = year_bounds(2025, TZ)
    _, end = year_bounds(2026, TZ)
    by_year = store.yields(YieldsQuery(DISTRICT, start, end, "year", TZ))
    assert [(t.key, t.yield_kg) for t in by_year] == [("2025", 7.0), ("2026", 100.0)]


def test_rewriting_a_yield_record_replaces_it(store: Store) -> None:
    harvest = parse_rfc3339("2026-10-05T10:00:00+08:00")
    store.write(Batch(yields=[yield_rec(V1, harvest, 1.0, 9000.0, plot="p1")]))
    store.write(Batch(yields=[yield_rec(V1, harvest, 1.5, 9500.0, plot="p1")]))
    totals = store.yields(yq("district"))
    assert [(t.records, t.area_ha, t.yield_kg) for t in totals] == [(1, 1.5, 9500.0)]
    records = store.yield_records(InRegion("village", V1), *year_bounds(2026, TZ))
    assert [(r.plot, r.area_ha, r.yield_kg, r.crop) for r in records] == [("p1", 1.5, 9500.0, "corn")]


def test_latest_values_and_status_per_device(store: Store) -> None:
    store.write(Batch(readings=[reading("st-a", V1, T0, soil_moisture=20.0, battery=3.9)]))
    store.write(Batch(readings=[reading("st-a", V1, T0 + HOUR, soil_moisture=21.0)]))
    store.write(Batch(readings=[reading("st-a", V1, T0 - HOUR, soil_moisture=5.0)]))  # late data: not latest
    store.write(Batch(readings=[reading("st-c", V_OTHER, T0, soil_moisture=40.0)]))
    store.write(Batch(statuses=[StatusChange("st-a", T0 + 2 * HOUR, False, V1)]))
    latest = store.latest(ZHANGXIANG, since=T0 - DAY)
    assert set(latest) == {"st-a"}
    a = latest["st-a"]
    assert a.values == {"soil_moisture": (T0 + HOUR, 21.0), "battery": (T0, 3.9)}
    assert a.status is False
    assert a.last_seen == T0 + 2 * HOUR
    assert store.latest(ZHANGXIANG, since=T0 + 3 * HOUR).get("st-a", None) is None or \
        store.latest(ZHANGXIANG, since=T0 + 3 * HOUR)["st-a"].values == {}


def test_rejections_are_kept_newest_first_and_counted(store: Store) -> None:
    store.write(Batch(rejections=[Rejection(T0, "nongyun/v1/x/telemetry", "x", "unknown_device", "d1", "{}")],
                      messages=2, worker="w1", readings=[reading("st-a", V1, T0, soil_moisture=1.0)]))
    store.write(Batch(rejections=[Rejection(T0 + 1, "nongyun/v1/st-a/telemetry", "st-a", "out_of_range", "d2", "{}")],
                      messages=1, worker="w2"))
    listed = store.rejections(limit=10)
    assert [(r.reason, r.detail) for r in listed] == [("out_of_range", "d2"), ("unknown_device", "d1")]
    assert [r.detail for r in store.rejections(reason="unknown_device")] == ["d1"]
    assert [r.detail for r in store.rejections(device="st-a")] == ["d2"]
    c = store.counters()
    assert (c.received, c.accepted) == (3, 1)
    assert c.rejected == {"unknown_device": 1, "out_of_range": 1}
    assert set(c.workers) == {"w1", "w2"}


def test_ping_reports_ok(store: Store) -> None:
    assert store.ping()["ok"] is True
