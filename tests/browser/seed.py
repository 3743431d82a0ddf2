"""A week of station readings and two seasons of harvests for the whole district, deterministic.

Stands in for the simulator's demo data (``sensors/simulator.py``) when that is not installed, so
the dashboard tests always have every tier populated: a few stations are offline (their points stop
two days ago), one battery is low, two farming villages have not reported this season's harvest.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from datetime import datetime

from service.context import Context
from service.records import Batch, Reading, YieldRecord
from service.store.base import Store
from service.targets import Targets
from service.times import DAY_MS, now_ms

HOUR_MS = 3_600_000
OFFLINE = ("qh-st-101203-2", "qh-st-102207-1", "qh-st-203211-1")
LOW_BATTERY = "qh-st-102204-1"
UNREPORTED = ("211204101214", "211204102218")  # farming villages without this season's harvest


@dataclass(frozen=True)
class Seeded:
    now: int
    year: int
    offline: tuple[str, ...]
    unreported: tuple[str, ...]


def _h(*parts: object) -> float:
    """A stable pseudo-random number in [0, 1) from its arguments."""
    return (zlib.crc32("/".join(map(str, parts)).encode()) % 100_000) / 100_000


def _values(device: str, village: str, metrics: tuple[str, ...], ts: int) -> dict[str, float]:
    hour = (ts // HOUR_MS + 8) % 24
    day = ts // DAY_MS
    diurnal = math.sin((hour - 9) / 24 * 2 * math.pi)
    raining = _h("rain", village[:9], day, hour // 6) > 0.93
    v = {
        "soil_moisture": 21 + 8 * _h("sm", village) + 1.5 * math.sin(day / 2) + (3 if raining else 0),
        "soil_temp": 2 + 2 * diurnal + 2 * _h("st", village),
        "air_temp": -1 + 6 * diurnal + 3 * _h("at", village) - 0.3 * (day % 5),
        "air_humidity": 55 + 20 * _h("ah", village, day) - 10 * diurnal,
        "rainfall": round(2.5 * _h("rr", village, ts), 2) if raining else 0.0,
        "light": max(0.0, 40_000 * diurnal),
        "wind_speed": 1 + 5 * _h("ws", village, day, hour),
        "soil_ec": 0.3 + 0.4 * _h("ec", village),
        "soil_ph": 6.2 + 0.8 * _h("ph", village),
        "battery": 3.3 if device == LOW_BATTERY else 3.85 + 0.2 * _h("bt", device),
    }
    return {m: round(v[m], 3) for m in metrics if m in v}


def seed(ctx: Context, store: Store, days: int = 8) -> Seeded:
    now = now_ms() // 60_000 * 60_000
    tz = ctx.settings.tz
    year = datetime.fromtimestamp(now / 1000, tz).year
    readings: list[Reading] = []
    for dev in ctx.registry:
        if dev.kind != "station":
            continue
        last = now - 2 * DAY_MS if dev.id in OFFLINE else now - 5 * 60_000
        ts = last - days * DAY_MS
        while ts <= last:
            readings.append(Reading(dev.id, dev.village, ts, _values(dev.id, dev.village, dev.metrics, ts)))
            ts += HOUR_MS
    targets = Targets.load(ctx.settings.config_dir / "targets.toml", ctx.tree)
    yields: list[YieldRecord] = []
    for y in (year - 1, year):
        harvest = int(datetime(y, 10, 8, 9, tzinfo=tz).timestamp() * 1000)
        harvest = min(harvest, now - DAY_MS)
        for village in ctx.tree.district.villages():
            target = targets.get(village.code)
            if target is None or target.sown_area_mu <= 0 or (y == year and village.code in UNREPORTED):
                continue
            for plot in range(2):
                mu = target.sown_area_mu / 2 * (0.85 + 0.1 * _h("area", village.code, y, plot))
                per_mu = 1080 + 160 * _h("ypm", village.code, y, plot) + (25 if y == year else 0)
                crop = "corn" if plot == 0 or _h("crop", village.code) < 0.7 else "soybean"
                if crop == "soybean":
                    per_mu = 300 + 40 * _h("soy", village.code, y)
                yields.append(YieldRecord("", village.code, harvest + plot * HOUR_MS, crop, mu / 15,
                                          mu * per_mu / 2, plot=f"P{plot + 1}", source="api"))
    yields.extend(_demo_zone(ctx, year, now, yields))
    store.write(Batch(readings=readings, yields=yields, worker="seed"))
    return Seeded(now, year, OFFLINE, UNREPORTED)


def _demo_zone(ctx: Context, year: int, now: int, others: list[YieldRecord]) -> list[YieldRecord]:
    """The 垦地共建示范区's plots, harvested both seasons at 11 % above the other records' 单产
    (the labels P1/P2 name no registered plot: those records are the "其他" of group_by=area_group)."""
    tz = ctx.settings.tz
    out: list[YieldRecord] = []
    for y in (year - 1, year):
        start = int(datetime(y, 1, 1, tzinfo=tz).timestamp() * 1000)
        rest = [r for r in others if start <= r.ts < int(datetime(y + 1, 1, 1, tzinfo=tz).timestamp() * 1000)]
        per_ha = sum(r.yield_kg for r in rest) / sum(r.area_ha for r in rest)
        harvest = min(int(datetime(y, 10, 9, 9, tzinfo=tz).timestamp() * 1000), now - DAY_MS)
        for i, plot in enumerate(ctx.land.plots(group="kendi-demo")):
            gain = 1.11 + 0.01 * (_h("demo", plot.id, y) - 0.5)
            out.append(YieldRecord("", plot.village, harvest + i * HOUR_MS, "corn", plot.area_ha,
                                   plot.area_ha * per_ha * gain, plot=plot.id, source="api"))
    return out
