"""墒情: the grading rules at every boundary, soils.toml, and moisture_report on both store backends."""

from __future__ import annotations

import math
import shutil
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service import moisture
from service.context import Context, build
from service.errors import SettingsError
from service.moisture import DROUGHT, GRADES, Thresholds, classify, drought_grade, grade
from service.queries.moisture import day_bounds, moisture_report, station_devices
from service.records import Batch, Reading
from service.settings import load
from service.soils import Soils
from service.store.base import Store
from service.store.sqlite import SqliteStore
from tests.conftest import CONFIG
from tests.store.influx_backends import fake_store

TH = Thresholds()
ZX = "211204101"  # 张相镇
V_LOAM = "211204101203"  # 东二台子村: 张相镇's loam (29 % vol)
V_SAND = "211204101205"  # 东三台子村: sand (14 % vol)
V_CLAY = "211204102212"  # 打车沟村: clay (40 % vol)
HOUR = 3_600_000

# -- pure grading -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("rel", "want"), [
    (40.0, "严重不足"), (40.0001, "不足"), (50.0, "不足"), (50.0001, "轻度不足"), (60.0, "轻度不足"),
    (60.0001, "适宜"), (90.0, "适宜"), (90.0001, "过多"), (0.0, "严重不足"), (189.0, "过多")])
def test_each_grade_boundary_goes_to_the_drier_grade(rel: float, want: str) -> None:
    assert grade(rel) == want


@pytest.mark.parametrize(("rel", "want"), [
    (30.0, "特旱"), (30.0001, "重旱"), (40.0, "重旱"), (40.0001, "中旱"), (50.0, "中旱"), (50.0001, "轻旱"),
    (60.0, "轻旱"), (60.0001, "无旱")])
def test_each_drought_boundary_goes_to_the_drier_grade(rel: float, want: str) -> None:
    assert drought_grade(rel) == want


@given(st.sampled_from(range(4)), st.floats(min_value=0, max_value=5, allow_nan=False))
def test_grades_at_and_around_every_moisture_threshold(i: int, eps: float) -> None:
    bound = TH.moisture[i]
    at = grade(bound)
    assert at == GRADES[4 - i]  # the threshold itself: the drier side
    assert grade(bound - eps) in GRADES[4 - i:]  # below: that grade or drier
    if bound + eps > bound:  # the next float above the threshold is already the wetter grade
        assert GRADES.index(grade(bound + eps)) < GRADES.index(at)  # above: wetter
    assert GRADES.index(grade(math.nextafter(bound, math.inf))) == 3 - i


@given(st.sampled_from(range(4)), st.floats(min_value=0, max_value=5, allow_nan=False))
def test_drought_at_and_around_every_threshold(i: int, eps: float) -> None:
    bound = TH.drought[i]
    assert drought_grade(bound) == DROUGHT[4 - i]
    assert DROUGHT.index(drought_grade(bound - eps)) >= 4 - i
    if bound + eps > bound:
        assert DROUGHT.index(drought_grade(bound + eps)) < 4 - i
    assert DROUGHT.index(drought_grade(math.nextafter(bound, math.inf))) == 3 - i


@given(st.floats(min_value=0, max_value=300, allow_nan=False), st.floats(min_value=0, max_value=300, allow_nan=False))
def test_wetter_is_never_graded_drier(a: float, b: float) -> None:
    lo, hi = sorted((a, b))
    assert GRADES.index(grade(hi)) <= GRADES.index(grade(lo))
    assert DROUGHT.index(drought_grade(hi)) <= DROUGHT.index(drought_grade(lo))


@given(st.floats(min_value=-40, max_value=80, allow_nan=False), st.floats(min_value=0.5, max_value=100),
       st.floats(min_value=5, max_value=60))
def test_frozen_soil_is_never_graded(temp: float, vol: float, fc: float) -> None:
    g = classify(vol, fc, temp)
    assert (g.state == "frozen") == (temp <= 0)
    assert (g.grade is None) == (g.state != "graded")


@given(st.floats(min_value=0, max_value=400, allow_nan=False))
def test_anomaly_bounds_are_6_and_190_inclusive_of_the_graded_side(rel: float) -> None:
    g = classify(rel * 30 / 100, 30.0, 15.0)
    assert g.relative_pct == pytest.approx(rel)
    figure = moisture.shown(g.relative_pct)
    assert (g.state == "anomalous") == (figure < 6 or figure > 190)


@given(st.floats(min_value=0.5, max_value=100), st.floats(min_value=5, max_value=60))
def test_the_grade_is_the_grade_of_the_figure_shown(vol: float, fc: float) -> None:
    g = classify(vol, fc, 10.0)
    if g.state == "graded":
        assert g.grade == grade(moisture.shown(g.relative_pct))
        assert abs(moisture.shown(g.relative_pct) - g.relative_pct) <= 0.05 + 1e-9


def test_anomaly_boundaries_exactly() -> None:
    assert classify(26.1, 29.0, 10.0).grade == "适宜"  # 90.00000000000001 as a float, 90.0 as shown
    assert classify(6.0, 100.0, 10.0).state == "graded" and classify(5.9, 100.0, 10.0).state == "anomalous"
    assert classify(190.0, 100.0, 10.0).state == "graded" and classify(190.1, 100.0, 10.0).state == "anomalous"
    assert classify(0.0, 100.0, 0.0).state == "frozen"  # frozen first: a frozen probe reads little water
    assert classify(50.0, 100.0, None).state == "graded"  # no soil_temp: not frozen


def test_relative_moisture_is_against_field_capacity() -> None:
    assert moisture.relative_moisture(14.5, 29.0) == 50.0
    with pytest.raises(ValueError):
        moisture.relative_moisture(10, 0)


def test_thresholds_from_config_move_the_grades() -> None:
    th = Thresholds(moisture=(30, 45, 55, 95))
    assert grade(92, th) == "适宜" and grade(92) == "过多"
    assert Thresholds(moisture=(50, 40, 60, 90)).problems()


# -- soils.toml ---------------------------------------------------------------------------------------


def test_the_repository_soils_nearest_table_wins(ctx: Context) -> None:
    soils = ctx.soils
    assert soils.of_village(V_SAND).texture == "sand" and soils.of_village(V_SAND).field_capacity == 14
    assert soils.of_village("211204102200").texture == "silt_loam"  # its township's soil
    assert soils.of_village("211204001200") == soils.default and soils.default.texture == "loam"
    assert soils.of_village("211204203205").depth_cm == 15  # the township's depth, the village's texture
    deep = soils.of_device("qh-st-101200-2", "211204101200")
    assert deep.depth_cm == 40 and deep.field_capacity == soils.of_village("211204101200").field_capacity
    assert {s.texture for s in soils.regions.values()} >= {"sand", "sandy_loam", "loam", "clay_loam", "clay"}


def _config_with(tmp_path: Path, soils: str) -> Path:
    cfg = tmp_path / "config"
    shutil.copytree(CONFIG, cfg)
    (cfg / "soils.toml").write_text(soils, encoding="utf-8")
    return cfg


@pytest.mark.parametrize(("text", "says"), [
    ('[regions."211204101205"]\ntexture = "peat"\n', "texture 'peat' is not one of"),
    ('[regions."211204999999"]\ntexture = "loam"\n', "is not a township or village"),
    ('[devices."nope"]\ndepth_cm = 40\n', "is not a station"),
    ('[devices."qh-gs-101"]\ndepth_cm = 40\n', "is not a station"),
    ('[textures.loam]\nfield_capacity = 10\nwilting_point = 12\n', "wilting_point (12.0) < field_capacity"),
    ('[textures.loam]\nfield_capacity = "thirty"\nwilting_point = 12\n', "field_capacity must be a number"),
    ('[grades]\nmoisture = [40, 60, 50, 90]\n', "strictly ascending"),
    ('[grades]\ndrought = [30, 40]\n', "list of 4 numbers"),
    ('[grades]\nanomaly_min = 200\n', "anomaly_min"),
    ('[regions."211204101"]\ntextur = "loam"\n', "unknown keys ['textur']"),
    ("[default\n", "cannot read the soils"),
])
def test_a_bad_soils_file_stops_the_start(tmp_path: Path, text: str, says: str) -> None:
    cfg = _config_with(tmp_path, text)
    with pytest.raises(SettingsError) as err:
        build(load(cfg, env={}, overrides={"store.data_dir": str(tmp_path / "data")}))
    assert says in str(err.value) and "soils.toml" in str(err.value)


def test_no_soils_file_grades_on_loam(tmp_path: Path) -> None:
    cfg = tmp_path / "config"
    shutil.copytree(CONFIG, cfg, ignore=shutil.ignore_patterns("soils.toml"))
    ctx = build(load(cfg, env={}, overrides={"store.data_dir": str(tmp_path / "data")}))
    assert ctx.soils == Soils() and ctx.soils.of_village(V_SAND).texture == "loam"


# -- moisture_report on both backends -----------------------------------------------------------------


@pytest.fixture(params=["sqlite", "influxdb-fake"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        s = SqliteStore(tmp_path / "m.sqlite3")
        yield s
        s.close()
    else:
        with fake_store(tmp_path) as f:
            yield f


DAY = date(2026, 7, 15)


def _day_readings(ctx: Context, device: str, day: date, moisture_pct: list[float],
                  soil_temp: float | None = 15.0) -> list[Reading]:
    village = ctx.registry.get(device).village
    start, _ = day_bounds(day, 1, ctx)
    out = []
    for i, v in enumerate(moisture_pct):
        values = {"soil_moisture": v}
        if soil_temp is not None:
            values["soil_temp"] = soil_temp
        out.append(Reading(device, village, start + (i * 6 + 1) * HOUR, values))
    return out


def test_a_township_graded_from_its_stations_means(ctx: Context, any_store: Store) -> None:
    sand = "qh-st-101205-1"  # 14 % vol field capacity
    loam = "qh-st-101203-1"  # 29 %
    loam2 = "qh-st-101203-2"
    frozen = "qh-st-101206-1"
    broken = "qh-st-101207-1"
    rows = (_day_readings(ctx, sand, DAY, [6.0, 8.0])  # 7 / 14 → 50 %: 不足 (on the boundary)
            + _day_readings(ctx, loam, DAY, [26.1, 26.1, 26.1])  # 90 %: 适宜 (on the boundary)
            + _day_readings(ctx, loam2, DAY, [29.0, 31.9])  # 105 %: 过多
            + _day_readings(ctx, frozen, DAY, [5.0], soil_temp=-0.5)
            + _day_readings(ctx, broken, DAY, [60.0])  # 207 %: anomalous
            + _day_readings(ctx, sand, date(2026, 7, 16), [14.0]))  # the next day: not counted
    any_store.write(Batch(readings=rows))
    r = moisture_report(ctx, any_store, ZX, DAY, group_by="village")
    by = {g.key: g for g in r.groups}
    assert [g.key for g in r.groups] == sorted(v.code for v in ctx.tree.get(ZX).villages())
    assert by[V_SAND].relative_pct == pytest.approx(50.0) and by[V_SAND].grade == "不足"
    assert by[V_SAND].drought == "中旱"
    assert by[V_LOAM].relative_pct == pytest.approx(97.5)  # mean of 90 and 105
    assert by[V_LOAM].stations == {"过多": 1, "适宜": 1} and by[V_LOAM].grade == "过多"
    assert by["211204101206"].frozen == 1 and by["211204101206"].grade is None
    assert by["211204101207"].anomalous == 1 and by["211204101207"].missing == 1  # its 2nd station sent nothing
    t = r.total
    assert t.key == ZX and t.name == "张相镇" and t.relative_pct == pytest.approx((50 + 90 + 105) / 3)
    assert t.stations == {"过多": 1, "适宜": 1, "不足": 1} and (t.frozen, t.anomalous) == (1, 1)
    assert t.missing == len(station_devices(ctx, ZX)) - 5
    assert sum(g.missing for g in r.groups) == t.missing


def test_a_week_averages_station_days(ctx: Context, any_store: Store) -> None:
    dev = "qh-st-102212-1"  # 打车沟村, clay: 40 % vol
    rows: list[Reading] = []
    for i, vol in enumerate([16.0, 20.0, 24.0]):  # 40, 50, 60 %
        rows += _day_readings(ctx, dev, date(2026, 7, 13 + i), [vol])
    any_store.write(Batch(readings=rows))
    r = moisture_report(ctx, any_store, V_CLAY, date(2026, 7, 13), days=7)
    assert r.days == 7 and r.start == date(2026, 7, 13)
    assert [g.key for g in r.groups] == [V_CLAY]
    assert r.total.relative_pct == pytest.approx(50.0) and r.total.stations == {"不足": 1}
    one = moisture_report(ctx, any_store, V_CLAY, date(2026, 7, 15))
    assert one.total.relative_pct == pytest.approx(60.0) and one.total.grade == "轻度不足"


def test_within_counts_only_the_scope(ctx: Context, any_store: Store) -> None:
    rows = (_day_readings(ctx, "qh-st-101205-1", DAY, [12.6])  # 90 % in 张相镇
            + _day_readings(ctx, "qh-st-102212-1", DAY, [8.0]))  # 20 % in 杨木林子镇
    any_store.write(Batch(readings=rows))
    district = moisture_report(ctx, any_store, "211204", DAY)
    assert [g.key for g in district.groups] == [t.code for t in ctx.tree.district.children]
    assert district.total.stations == {"适宜": 1, "严重不足": 1}
    narrowed = moisture_report(ctx, any_store, "211204", DAY, within=ZX)
    assert [g.key for g in narrowed.groups] == [ZX] and narrowed.total.stations == {"适宜": 1}
    assert narrowed.total.key == "211204"


def test_days_are_local_days_in_the_configured_zone(tmp_path: Path) -> None:
    """New York: 8 March 2026 has 23 hours; a reading at 23:30 local belongs to that day."""
    settings = load(CONFIG, env={"NONGYUN_TZ": "America/New_York"},
                    overrides={"store.data_dir": str(tmp_path / "d")})
    ctx = build(settings)
    lo, hi = day_bounds(date(2026, 3, 8), 1, ctx)
    assert hi - lo == 23 * HOUR
    s = SqliteStore(tmp_path / "ny.sqlite3")
    try:
        dev = ctx.registry.get("qh-st-102212-1")
        s.write(Batch(readings=[Reading(dev.id, dev.village, hi - HOUR // 2, {"soil_moisture": 36.0}),
                                Reading(dev.id, dev.village, hi + HOUR // 2, {"soil_moisture": 4.0})]))
        r = moisture_report(ctx, s, dev.village, date(2026, 3, 8))
        assert r.total.relative_pct == pytest.approx(90.0)
    finally:
        s.close()


def test_bad_arguments_are_bad_input(ctx: Context, tmp_path: Path) -> None:
    from service.errors import BadInput

    s = SqliteStore(tmp_path / "x.sqlite3")
    try:
        with pytest.raises(BadInput):
            moisture_report(ctx, s, ZX, DAY, days=0)
        with pytest.raises(BadInput):
            moisture_report(ctx, s, ZX, DAY, group_by="crop")
    finally:
        s.close()
