"""The simulated district behaves like Qinghe's fields and speaks the MQTT contract exactly."""

from __future__ import annotations

import itertools
import statistics
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import orjson
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from sensors.simulator import District
from sensors.weather import Climate
from service.context import Context
from service.payloads import MAX_PAYLOAD_BYTES
from service.records import YieldRecord
from service.registry import Device
from service.store.sqlite import SqliteStore
from service.times import now_ms
from service.units import ha_to_mu
from tests.brokers import Mosquitto

HOUR = 3_600_000
SEED = 11


@pytest.fixture
def district(ctx: Context) -> District:
    return District(ctx, seed=SEED)


def local_ms(ctx: Context, year: int, month: int, day: int, hour: int = 0) -> int:
    return int(datetime(year, month, day, hour, tzinfo=ctx.settings.tz).timestamp() * 1000)


def station_with(district: District, metric: str) -> Device:
    return next(d for d in district.stations if metric in d.metrics)


def check_year(district: District, ctx: Context, step_ms: int) -> None:
    """Decode a year of every device's traffic; every record must be accepted and in range."""
    ranges = {m.id: (m.min, m.max) for m in ctx.catalogue.metrics.values()}
    start, end = local_ms(ctx, 2025, 12, 1), local_ms(ctx, 2026, 12, 1)
    steps = len(range(-(-start // step_ms) * step_ms, end, step_ms))
    readings = 0
    seen: set[str] = set()
    for batch in district.batches_between(start, end, step_ms):
        assert batch.rejections == [], batch.rejections[:3]
        for r in batch.readings:
            for metric, v in r.values.items():
                lo, hi = ranges[metric]
                assert lo <= v <= hi, (r.device, metric, v)
            seen.add(r.device)
        readings += len(batch.readings)
    assert seen == {d.id for d in district.stations}
    assert readings == len(district.stations) * steps


def test_a_year_every_seventh_hour_is_accepted_whole(district: District, ctx: Context) -> None:
    # 7 h steps visit every hour of the day over a year at a seventh of the cost.
    check_year(district, ctx, 7 * HOUR)


@pytest.mark.slow
def test_a_year_hourly_is_accepted_whole(district: District, ctx: Context) -> None:
    check_year(district, ctx, HOUR)


def test_rain_raises_soil_moisture(district: District, ctx: Context) -> None:
    dev = station_with(district, "soil_moisture")
    climate = district.climate
    for hour in range(local_ms(ctx, 2026, 6, 15), local_ms(ctx, 2026, 8, 31), HOUR):
        if climate.rain_between(dev.village, hour, hour + 3 * HOUR) >= 10:
            before = district.readings_at(dev, hour)["soil_moisture"]
            after = district.readings_at(dev, hour + 4 * HOUR)["soil_moisture"]
            assert after > before + 2
            break
    else:
        pytest.fail("no summer storm of 10 mm in 3 h: the monsoon is missing")


def test_soil_dries_between_summer_rains(district: District, ctx: Context) -> None:
    dev = station_with(district, "soil_moisture")
    climate = district.climate
    for day in range(local_ms(ctx, 2026, 5, 1), local_ms(ctx, 2026, 9, 1), 24 * HOUR):
        if climate.rain_between(dev.village, day, day + 4 * 24 * HOUR) == 0:
            start = district.readings_at(dev, day)["soil_moisture"]
            assert district.readings_at(dev, day + 4 * 24 * HOUR)["soil_moisture"] < start
            return
    pytest.fail("no four dry days from May to August")


def monthly_temps(district: District, ctx: Context, dev: Device, month: int) -> list[float]:
    return [district.readings_at(dev, t)["air_temp"]
            for t in range(local_ms(ctx, 2026, month, 1), local_ms(ctx, 2026, month + 1, 1), HOUR)]


def test_july_is_warm_and_january_cold(district: District, ctx: Context) -> None:
    dev = station_with(district, "air_temp")
    jan, jul = monthly_temps(district, ctx, dev, 1), monthly_temps(district, ctx, dev, 7)
    assert -17 < statistics.mean(jan) < -7
    assert 20 < statistics.mean(jul) < 28
    assert max(jan) < min(jul) + 10


def test_days_are_warmer_than_nights(district: District, ctx: Context) -> None:
    dev = station_with(district, "air_temp")
    ranges = []
    for day in range(1, 29):
        temps = [district.readings_at(dev, local_ms(ctx, 2026, 4, day, h))["air_temp"] for h in range(24)]
        ranges.append(max(temps) - min(temps))
        assert temps[14] > temps[5]
    assert 7 < statistics.mean(ranges) < 15


def test_light_follows_the_sun(district: District, ctx: Context) -> None:
    dev = station_with(district, "light")
    for month in (1, 4, 6, 9, 12):
        for day in (3, 17):
            for hour in (0, 2, 22, 23):
                assert district.readings_at(dev, local_ms(ctx, 2026, month, day, hour))["light"] == 0
    noons = [district.readings_at(dev, local_ms(ctx, 2026, 6, day, 12))["light"] for day in range(1, 31)]
    assert statistics.mean(noons) > 30_000
    assert max(noons) > 70_000


def test_humidity_falls_as_the_day_warms(district: District, ctx: Context) -> None:
    dev = station_with(district, "air_humidity")
    dawn = [district.readings_at(dev, local_ms(ctx, 2026, 5, d, 5))["air_humidity"] for d in range(1, 31)]
    noon = [district.readings_at(dev, local_ms(ctx, 2026, 5, d, 14))["air_humidity"] for d in range(1, 31)]
    assert statistics.mean(dawn) > statistics.mean(noon) + 10


def test_a_few_batteries_fail_at_night(district: District, ctx: Context) -> None:
    assert len(district.failing) == 3
    nights = [local_ms(ctx, 2026, 5, d, 5) for d in range(1, 15)]
    for dev in district.stations:
        lowest = min(district.readings_at(dev, t)["battery"] for t in nights)
        if dev.id in district.failing:
            assert lowest < 3.4
        else:
            assert lowest > 3.6
    healthy = next(d for d in district.stations if d.id not in district.failing)
    assert (district.readings_at(healthy, local_ms(ctx, 2026, 5, 2, 15))["battery"]
            > district.readings_at(healthy, local_ms(ctx, 2026, 5, 2, 4))["battery"])


def test_villages_differ_and_neighbours_share_the_rain(district: District, ctx: Context) -> None:
    c = district.climate
    start, end = local_ms(ctx, 2026, 6, 1), local_ms(ctx, 2026, 9, 1)

    def daily(village: str) -> list[float]:
        return [c.rain_between(village, t, t + 24 * HOUR) for t in range(start, end, 24 * HOUR)]

    a, b, far = daily("211204101202"), daily("211204101203"), daily("211204203209")
    assert statistics.correlation(a, b) > statistics.correlation(a, far)
    assert c.traits("211204101202") != c.traits("211204101203")
    assert 250 < sum(a) < 700  # summer rain in mm: most of the year's ~650


def season_by_crop(district: District, year: int) -> dict[str, tuple[float, float]]:
    totals: dict[str, tuple[float, float]] = {}
    for y in district.season(year):
        area, jin = totals.get(y.record["crop"], (0.0, 0.0))
        totals[y.record["crop"]] = (area + y.record["area_mu"], jin + y.record["yield_jin"])
    return totals


def test_a_season_of_harvests_looks_like_qinghe(district: District, ctx: Context) -> None:
    totals = season_by_crop(district, 2026)
    area = sum(a for a, _ in totals.values())
    assert 180_000 < area < 230_000
    corn_area, corn_jin = totals["corn"]
    assert corn_area / area > 0.8
    assert max(totals, key=lambda c: totals[c][0]) == "corn"
    assert 1000 < corn_jin / corn_area < 1300
    assert 200 < totals["soybean"][1] / totals["soybean"][0] < 450
    for y in district.season(2026):
        crop = ctx.catalogue.crops[y.record["crop"]]
        assert 5 <= y.record["area_mu"] <= 60
        lo, hi = crop.plausible_kg_per_mu
        assert lo * 2 - 1 <= y.record["yield_jin"] / y.record["area_mu"] <= hi * 2 + 1
        local = datetime.fromtimestamp(y.ts / 1000, ctx.settings.tz).strftime("%m-%d")
        assert crop.harvest[0] <= local <= crop.harvest[1]
        assert 5 <= local_hour(ctx, y.ts) <= 19


def local_hour(ctx: Context, ms: int) -> int:
    return datetime.fromtimestamp(ms / 1000, ctx.settings.tz).hour


def test_every_township_harvests_and_years_differ(district: District, ctx: Context) -> None:
    towns = {ctx.registry.get(y.device).township for y in district.season(2026)}
    assert towns == {t.code for t in ctx.tree.district.children}
    this, last = season_by_crop(district, 2026)["corn"], season_by_crop(district, 2025)["corn"]
    change = (this[1] / this[0]) / (last[1] / last[0]) - 1
    assert 0.01 < abs(change) < 0.08


def decoded_season(district: District, year: int) -> list[YieldRecord]:
    """The season's records as ingest attributes them (plot → its village, else the named village)."""
    out: list[YieldRecord] = []
    for y in district.season(year):
        d = district.decoder.decode(f"nongyun/v1/{y.device}/yield", orjson.dumps(y.record), y.ts)
        assert d.rejections == [], d.rejections
        out.extend(d.yields)
    return out


def farming_villages(ctx: Context) -> set[str]:
    return {v.code for v in ctx.tree if v.level == "village" and v.kind == "village"}


def test_the_demo_land_covers_the_farming_villages_and_the_groups(ctx: Context) -> None:
    land = ctx.land
    mu = {g.id: sum(ha_to_mu(p.area_ha) for p in land.plots(group=g.id)) for g in land.groups()}
    kinds = {g.kind for g in land.groups()}
    assert {"demo_zone", "high_standard", "conservation_tillage", "custodial"} <= kinds
    assert mu["kendi-demo"] == pytest.approx(1100, abs=0.5)
    assert mu["bhgz"] == pytest.approx(44_000, rel=0.02) and mu["tuoguan"] == pytest.approx(30_000, rel=0.02)
    assert sum(ha_to_mu(p.area_ha) for p in land) == pytest.approx(230_000, rel=0.01)
    assert {p.village for p in land} == farming_villages(ctx)  # communities hold no plots


def test_the_generator_reproduces_the_committed_land(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parent.parent
    for name in ("regions.yaml",):
        (tmp_path / name).write_bytes((root / "config" / name).read_bytes())
    subprocess.run([sys.executable, str(root / "scripts" / "generate_land.py"), str(tmp_path)], check=True,
                   capture_output=True)
    for name in ("plots.yaml", "area_groups.yaml"):
        assert (tmp_path / name).read_text(encoding="utf-8") == (root / "config" / name).read_text(encoding="utf-8")


def test_harvests_are_counted_where_the_grain_grew(district: District, ctx: Context) -> None:
    records = decoded_season(district, 2026)
    assert not [r for r in records if r.unattributed]
    by_village: dict[str, float] = {}
    for r in records:
        by_village[r.village] = by_village.get(r.village, 0.0) + r.yield_kg * 2
    assert set(by_village) == farming_villages(ctx)  # every farming village harvests, no community does
    progress = {v: jin / ctx.targets.get(v).grain_output_jin for v, jin in by_village.items()}  # type: ignore[union-attr]
    assert max(progress.values()) < 2.0 and min(progress.values()) > 0.5, progress
    season = district.season(2026)
    scales = [y for y in season if ctx.registry.get(y.device).kind == "grain_scale"]
    assert scales and all(y.record["village"][:9] == ctx.registry.get(y.device).township for y in scales)
    assert len({y.record["village"] for y in scales}) > len({y.device for y in scales})  # many villages per scale
    assert any("plot" not in y.record for y in scales)  # some tickets name the village only
    monitors: dict[str, set[str]] = {}
    for y in season:
        if ctx.registry.get(y.device).kind == "yield_monitor":
            assert y.record["plot"] and ctx.land.plot(y.record["plot"]) is not None
            monitors.setdefault(y.device, set()).add(ctx.land.plot(y.record["plot"]).village)  # type: ignore[union-attr]
    assert monitors and all(len(v) > 1 for v in monitors.values())  # harvesters move between villages' plots
    identities = [(y.device, y.record.get("plot", y.record.get("village")), y.ts) for y in season]
    assert len(set(identities)) == len(identities)  # no load overwrites another


def test_the_demo_zone_yields_about_eleven_per_cent_more(district: District, ctx: Context) -> None:
    for year in (2025, 2026):
        totals: dict[str, list[float]] = {"demo": [0.0, 0.0], "rest": [0.0, 0.0]}
        for r in decoded_season(district, year):
            plot = ctx.land.plot(r.plot) if r.plot else None
            key = "demo" if plot and "kendi-demo" in plot.groups else "rest" if not plot or not plot.groups else ""
            if key:
                totals[key][0] += r.area_ha
                totals[key][1] += r.yield_kg
        gain = (totals["demo"][1] / totals["demo"][0]) / (totals["rest"][1] / totals["rest"][0]) - 1
        assert 0.08 <= gain <= 0.14, (year, gain)


def test_yields_between_cuts_the_season(district: District, ctx: Context) -> None:
    start, end = local_ms(ctx, 2026, 10, 1), local_ms(ctx, 2026, 10, 8)
    week = district.yields_between(start, end)
    assert week and all(start <= y.ts < end for y in week)
    assert week == [y for y in district.season(2026) if start <= y.ts < end]


def test_messages_stay_within_64_kib(district: District, ctx: Context) -> None:
    start = local_ms(ctx, 2026, 9, 25)
    # A month per message would be ~140 KB for a station: it must be split into arrays.
    messages = list(district.messages_between(start, start + 30 * 24 * HOUR, HOUR, steps_per_message=24 * 30))
    assert max(len(p) for _, p in messages) <= MAX_PAYLOAD_BYTES
    station = district.stations[0].id
    parts = [orjson.loads(p) for t, p in messages if t == f"nongyun/v1/{station}/telemetry"]
    assert len(parts) > 1 and all(isinstance(p, list) for p in parts)
    stamps = [r["ts"] for part in parts for r in part]
    assert stamps == list(range(start, start + 30 * 24 * HOUR, HOUR))
    decoded = [district.decoder.decode(t, p, start + 31 * 24 * HOUR) for t, p in messages]
    assert not [r for d in decoded for r in d.rejections]
    assert any(t.endswith("/yield") for t, _ in messages)
    assert {p for t, p in messages if t.endswith("/status")} == {b"online"}


def test_same_seed_same_traffic_whatever_was_asked_before(ctx: Context) -> None:
    start = local_ms(ctx, 2026, 7, 10)
    a = list(District(ctx, seed=SEED).messages_between(start, start + 48 * HOUR, HOUR))
    warmed = District(ctx, seed=SEED)
    warmed.readings_at(warmed.stations[0], local_ms(ctx, 2026, 3, 1))  # a different history of queries
    list(warmed.messages_between(start - 24 * HOUR, start, HOUR))
    assert list(warmed.messages_between(start, start + 48 * HOUR, HOUR)) == a
    assert list(District(ctx, seed=SEED + 1).messages_between(start, start + 48 * HOUR, HOUR)) != a


def test_climate_is_continuous_across_segments() -> None:
    c = Climate(3)
    village = "211204102205"
    values = [c.soil_water(village, h * HOUR)[0] for h in range(490_000, 490_000 + 24 * 60)]
    assert max(abs(b - a) for a, b in itertools.pairwise(values)) < 8


def test_backfill_writes_through_the_decoder(district: District, ctx: Context, tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "store.sqlite")
    progress: list[float] = []
    start = local_ms(ctx, 2026, 10, 1)
    stats = district.backfill(store, start, start + 3 * 24 * HOUR, HOUR, lambda f, s: progress.append(f))
    counters = store.counters()
    store.close()
    assert stats.rejections == 0
    assert not any(counters.rejected.values())
    assert stats.readings == len(district.stations) * 72
    assert stats.yields > 50
    assert counters.accepted >= stats.readings + stats.yields
    assert progress and progress[-1] == pytest.approx(1.0, abs=0.02)


def test_run_live_publishes_every_station(district: District, mosquitto: Mosquitto, tmp_path: Path) -> None:
    got: list[tuple[str, bytes]] = []
    ready = threading.Event()
    sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="live-sub")
    sub.on_connect = lambda c, *a: c.subscribe("nongyun/v1/+/telemetry", qos=1)
    sub.on_subscribe = lambda *a: ready.set()
    sub.on_message = lambda c, u, m: got.append((m.topic, m.payload))
    sub.connect("127.0.0.1", mosquitto.port)
    sub.loop_start()
    assert ready.wait(10)
    stop = threading.Event()
    # 600x: the stations' 10-minute interval passes every second.
    live = threading.Thread(target=district.run_live, args=(mosquitto.url, 600.0, stop, tmp_path))
    live.start()
    try:
        deadline = time.monotonic() + 20
        want = {f"nongyun/v1/{d.id}/telemetry" for d in district.stations}
        while {t for t, _ in got} != want:
            assert time.monotonic() < deadline, f"{len(want - {t for t, _ in got})} stations never published"
            time.sleep(0.05)
    finally:
        stop.set()
        live.join(30)
        sub.disconnect()
        sub.loop_stop()
    assert not live.is_alive()
    decoded = [district.decoder.decode(t, p, now_ms()) for t, p in list(got)]
    assert not [r for d in decoded for r in d.rejections]


@pytest.mark.slow
def test_backfilling_the_season_so_far_is_quick(district: District, ctx: Context, tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "season.sqlite")
    start = local_ms(ctx, 2026, 4, 1)
    stats = district.backfill(store, start, max(now_ms(), local_ms(ctx, 2026, 11, 1)), HOUR)
    store.close()
    assert stats.rejections == 0 and stats.readings > 250_000 and stats.yields > 5_000
    assert stats.seconds < 60, f"{stats.seconds:.1f} s (target well under 30 s on 2 cores)"


# -- 墒情 over a season (issue 13): soils by village, dry and wet spells, winter freeze --------------------


def _district_rain(district: District, villages: list[str], start: int, days: int) -> float:
    return sum(district.climate.rain_between(v, start, start + days * 24 * HOUR) for v in villages) / len(villages)


def _spell(district: District, villages: list[str], first: int, last: int, days: int, wettest: bool) -> int:
    """The start of the driest (or wettest) run of ``days`` local days starting in [first, last)."""
    starts = range(first, last, 24 * HOUR)
    rain = {s: _district_rain(district, villages, s, days) for s in starts}
    return (max if wettest else min)(starts, key=lambda s: rain[s])


def test_a_season_grades_dry_and_wet_spells_and_winter_freezes(district: District, ctx: Context,
                                                               tmp_path: Path) -> None:
    from service.queries.moisture import moisture_report
    from service.times import local_date

    villages = sorted({d.village for d in district.stations})
    soils = {ctx.soils.of_village(v).texture for v in villages}
    assert len(soils) >= 4  # a few textures across the district, not one soil everywhere
    dry = _spell(district, villages, local_ms(ctx, 2026, 4, 20), local_ms(ctx, 2026, 6, 20), 14, False)
    wet = _spell(district, villages, local_ms(ctx, 2026, 7, 1), local_ms(ctx, 2026, 8, 25), 4, True)
    assert _district_rain(district, villages, dry, 14) < 15 < 40 < _district_rain(district, villages, wet, 4)
    winter = local_ms(ctx, 2026, 1, 15)
    day = 24 * HOUR
    store = SqliteStore(tmp_path / "season.sqlite3")
    try:
        # the spell's last days (the soil dried through it), the day after the storms, two winter days
        spans = ((dry + 11 * day, dry + 14 * day), (wet + 4 * day, wet + 5 * day), (winter, winter + 2 * day))
        for start, end in spans:
            stats = district.backfill(store, start, end, step_ms=2 * HOUR)
            assert stats.rejections == 0

        def graded(ms: int) -> dict[str, str | None]:
            r = moisture_report(ctx, store, ctx.tree.district.code, local_date(ms, ctx.settings.tz),
                                group_by="village")
            return {g.key: g.grade for g in r.groups if g.key in villages}

        after_dry = graded(dry + 13 * day)
        assert any(g in ("不足", "严重不足") for g in after_dry.values()), after_dry
        assert len(set(after_dry.values())) >= 2  # sands dry out sooner than clays: villages differ
        after_wet = graded(wet + 4 * day)
        assert any(g == "过多" for g in after_wet.values()), after_wet
        frozen = moisture_report(ctx, store, ctx.tree.district.code, local_date(winter + day, ctx.settings.tz))
        assert frozen.total.frozen == len([d for d in district.stations if "soil_moisture" in d.metrics])
        assert frozen.total.grade is None and frozen.total.stations == {}
    finally:
        store.close()
