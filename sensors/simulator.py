"""A simulated district: every device of the registry, publishing like the real ones.

Stations report the weather model of ``sensors.weather`` (what each station measures is its
``metrics`` in config/devices.yaml) on the soils of config/soils.toml, so soil moisture relates to
each village's field capacity: a spring or early-summer dry spell takes villages to 不足, a run of
summer storms puts them above field capacity (过多), and winter soil freezes. Yield monitors and
grain scales report harvested plots in the crops' harvest windows of config/catalogue.toml. Three uses:

- ``messages_between``: the exact MQTT traffic of a past period (backlogs as JSON arrays ≤ 64 KiB);
- ``batches_between`` / ``backfill``: the same payloads run through ingest's own ``PayloadDecoder``
  and written straight into a store, so a season of history takes seconds and is validated exactly
  like live traffic (a rejection here is a simulator bug, and it is counted like any other);
- ``run_live``: device clients publishing the current readings to a broker.
"""

from __future__ import annotations

import bisect
import logging
import math
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from service.context import Context
from service.payloads import PayloadDecoder
from service.records import Batch
from service.registry import Device
from service.store.base import Store
from service.times import now_ms
from service.units import ha_to_mu

from .weather import Climate, key_of, uniform, uniform2
from .wire import pack, telemetry_record, topic, yield_record

log = logging.getLogger(__name__)

HOUR_MS = 3_600_000
FAILING_BATTERIES = 3  # stations whose cell is worn out and sags below 3.4 V at night
DISTRICT_AREA_MU = 205_000  # grain sown in an average year, of the 23万亩 of plots in config/plots.yaml
CROP_MIX = {"corn": 0.87, "rice": 0.08, "soybean": 0.05}  # Tieling: corn ~89.5 % of grain area
GRAIN_SCALE_SHARE = 0.4  # of a township's plots weighed at its grain station; the rest on harvesters
SCALE_VILLAGE_ONLY = 0.3  # of the scale's tickets for plots outside any area group: the village, no plot
LOAD_MU = 45.0  # a load (a combine's run, a truck at the scale) covers at most this much of a plot
DEMO_ZONE_GAIN = 1.11  # 垦地共建示范区: grain yield 11 % above the land outside every area group
GROUP_GAIN = {"high_standard": 1.04, "custodial": 1.02, "conservation_tillage": 1.01}
HARVEST_MOISTURE = {"corn": (32.0, 22.0), "rice": (25.0, 18.0), "soybean": (17.0, 12.0)}  # start → end
DECIMALS = {"light": 0, "soil_ec": 2, "soil_ph": 2, "battery": 2, "co2": 0}
# Per-station sensor calibration bias (same unit as the metric): two probes in one field never agree.
BIAS = {"soil_moisture": 1.2, "soil_temp": 0.3, "air_temp": 0.2, "air_humidity": 2.5, "soil_ec": 0.04,
        "soil_ph": 0.05, "light": 1500.0, "wind_speed": 0.2}

Progress = Callable[[float, "BackfillStats"], None]


@dataclass(frozen=True)
class SimYield:
    """A harvested plot as the device reports it: the contract's yield record and who sends it."""

    device: str
    ts: int
    record: dict[str, Any]


@dataclass(frozen=True, slots=True)
class _Load:
    """One load of a plot's harvest before it becomes a record (the demo zone's yield is set last)."""

    plot: str
    village: str
    groups: tuple[str, ...]
    crop: str
    n: int
    device: str
    kind: str
    named_plot: bool
    ts: int
    area: float
    jin: float
    moisture: float


@dataclass
class BackfillStats:
    messages: int = 0
    readings: int = 0
    yields: int = 0
    rejections: int = 0
    seconds: float = 0.0
    reasons: dict[str, int] = field(default_factory=dict)


class District:
    """The devices of ``ctx.registry`` with a shared climate; deterministic for a given seed."""

    def __init__(self, ctx: Context, seed: int = 2026) -> None:
        self.ctx = ctx
        self.seed = seed
        self.tz = ctx.settings.tz
        soils = ctx.soils
        self.climate = Climate(seed, lambda v: (soils.of_village(v).field_capacity, soils.of_village(v).wilting_point))
        self.stations = [d for d in ctx.registry if d.kind == "station"]
        self.harvest_devices = [d for d in ctx.registry if d.kind in ("yield_monitor", "grain_scale")]
        self.decoder = PayloadDecoder(ctx.registry, ctx.catalogue, ctx.land, ctx.tree)
        self._by_township: dict[str, tuple[list[Device], list[Device]]] = {}
        self._ranges = {m.id: (m.min, m.max) for m in ctx.catalogue.metrics.values()}
        by_wear = sorted(self.stations, key=lambda d: uniform(seed, key_of(d.id), 77))
        self.failing = frozenset(d.id for d in by_wear[:FAILING_BATTERIES])
        self._keys = {d.id: key_of(d.id) for d in ctx.registry}
        self._plans: dict[str, list[tuple[str, float, float, float, int]]] = {}
        # A station whose own soil (config/soils.toml [devices]) differs from its village's holds the
        # village's relative moisture in its own soil: the same wetness, another % vol.
        self._soil_scale = {d.id: soils.of_device(d.id, d.village).field_capacity
                            / soils.of_village(d.village).field_capacity for d in self.stations}
        self._samples: dict[tuple[str, int, int], dict[str, float]] = {}
        self._seasons: dict[int, list[SimYield]] = {}

    # -- stations --------------------------------------------------------------------------------------
    def readings_at(self, device: Device | str, ts_ms: int, interval_ms: int | None = None) -> dict[str, float]:
        """The station's configured metrics at ``ts_ms``; rainfall is the rain of the interval before."""
        dev = self.ctx.registry.get(device) if isinstance(device, str) else device
        interval = interval_ms or dev.interval_s * 1000
        cache_key = (dev.village, ts_ms, interval)
        sample = self._samples.get(cache_key)  # the village's other station at the same instant
        if sample is None:
            if len(self._samples) > 8192:
                self._samples.clear()
            sample = self._samples[cache_key] = self.climate.sample(dev.village, ts_ms, interval)
        key = self._keys[dev.id]
        jitter = uniform2(key, ts_ms) - 0.5
        out: dict[str, float] = {}
        for metric, bias, lo, hi, decimals in self._plan(dev):
            if metric == "battery":
                value = self.climate.battery(key, ts_ms, sample["air_temp"], dev.id in self.failing)
            elif metric == "co2":
                value = 415 + 40 * jitter
            else:
                value = sample[metric]
                if metric == "soil_moisture":
                    value *= self._soil_scale.get(dev.id, 1.0)
                if bias and (metric != "light" or value > 0):
                    value += bias * (1 + 0.5 * jitter)
            out[metric] = round(lo if value < lo else hi if value > hi else value, decimals)
        return out

    def _plan(self, dev: Device) -> list[tuple[str, float, float, float, int]]:
        """Per metric of a station: its calibration bias, valid range and rounding."""
        plan = self._plans.get(dev.id)
        if plan is None:
            key = self._keys[dev.id]
            plan = self._plans[dev.id] = [
                (m, BIAS.get(m, 0.0) * (2 * uniform(key, key_of(m)) - 1), *self._ranges[m], DECIMALS.get(m, 1))
                for m in dev.metrics]
        return plan

    # -- harvests -------------------------------------------------------------------------------------
    def season(self, year: int) -> list[SimYield]:
        """Every harvested plot reported in ``year`` (local calendar), sorted by time."""
        cached = self._seasons.get(year)
        if cached is None:
            cached = self._seasons[year] = self._new_season(year)
        return cached

    def yields_between(self, start_ms: int, end_ms: int) -> list[SimYield]:
        first = datetime.fromtimestamp(start_ms / 1000, self.tz).year
        last = datetime.fromtimestamp((end_ms - 1) / 1000, self.tz).year
        out: list[SimYield] = []
        for year in range(first, last + 1):
            season = self.season(year)
            lo = bisect.bisect_left(season, start_ms, key=lambda y: y.ts)
            hi = bisect.bisect_left(season, end_ms, key=lambda y: y.ts)
            out.extend(season[lo:hi])
        return out

    def _year_factor(self, year: int, crop: str) -> float:
        """Good and poor years alternate, so consecutive seasons differ by a few per cent."""
        sign = 1 if year % 2 == 0 else -1
        return 1 + sign * (0.01 + 0.012 * uniform(self.seed, year, key_of(crop)))

    def _new_season(self, year: int) -> list[SimYield]:
        """Every sown plot of config/plots.yaml harvested in loads (a combine's tank, a truck at the
        scale), each load a record naming its plot. Without registered plots, no harvests."""
        crops = {c: self.ctx.catalogue.crops[c] for c in CROP_MIX if c in self.ctx.catalogue.crops}
        plots = list(self.ctx.land)
        if not plots or "corn" not in crops:
            return []
        total_mu = sum(ha_to_mu(p.area_ha) for p in plots)
        sown = min(1.0, DISTRICT_AREA_MU * (1 + 0.03 * (2 * uniform(self.seed, year, 1) - 1)) / total_mu)
        demo = {g.id for g in self.ctx.land.groups() if g.kind == "demo_zone"}
        loads: list[_Load] = []
        for plot in plots:
            pk = key_of(plot.id)
            if not plot.groups and uniform(self.seed, year, pk, 1) >= sown:
                continue  # fallow this year, or hazel, vegetables: not grain
            devices = self._devices_of(plot.village[:9])
            if not devices:
                continue
            crop = "corn" if demo & set(plot.groups) else self._crop_of(plot.id, plot.village[:9], year, crops)
            loads.extend(self._loads(plot.id, plot.village, ha_to_mu(plot.area_ha), plot.groups, crop, year,
                                     devices, crops[crop].harvest))
        rest = [ld for ld in loads if not ld.groups]
        rest_per_mu = sum(ld.jin for ld in rest) / max(1e-9, sum(ld.area for ld in rest))
        out: list[SimYield] = []
        seen: set[tuple[str, str, int]] = set()
        for ld in loads:
            lo, hi = crops[ld.crop].plausible_kg_per_mu
            k = (self.seed, year, key_of(ld.plot), ld.n)
            if demo & set(ld.groups):  # the seed's figure: the demo zone's grain yield is 11 % above the rest
                per_mu = DEMO_ZONE_GAIN * rest_per_mu * (1 + 0.03 * _gauss(uniform(*k, 8), uniform(*k, 9)))
            else:
                per_mu = ld.jin / ld.area
            per_mu = min(2 * hi, max(2 * lo, per_mu))
            ts = ld.ts
            while (ld.device, ld.plot, ts) in seen:  # two loads of one device never share a point
                ts += 1000
            seen.add((ld.device, ld.plot, ts))
            record: dict[str, Any] = {"ts": ts, "crop": ld.crop, "area_mu": ld.area,
                                      "yield_jin": round(per_mu * ld.area)}
            if ld.named_plot:
                record["plot"] = ld.plot
            if ld.kind == "grain_scale":
                record["village"] = ld.village  # the scale's ticket names the village of origin
            record["moisture_pct"] = ld.moisture
            out.append(SimYield(ld.device, ts, record))
        out.sort(key=lambda y: (y.ts, y.device))
        return out

    def _devices_of(self, township: str) -> tuple[list[Device], list[Device]]:
        """(grain scales, yield monitors) of a township."""
        devs = self._by_township.get(township)
        if devs is None:
            devs = self._by_township[township] = (
                [d for d in self.harvest_devices if d.township == township and d.kind == "grain_scale"],
                [d for d in self.harvest_devices if d.township == township and d.kind == "yield_monitor"])
        return devs

    def _crop_of(self, plot: str, township: str, year: int, crops: dict[str, Any]) -> str:
        """Paddies stay rice; dry plots rotate corn with some soybean, year by year."""
        tk, pk = key_of(township), key_of(plot)
        if "rice" in crops and uniform(pk, 3) < CROP_MIX["rice"] * (0.4 + 1.2 * uniform(tk, 3)):
            return "rice"
        if "soybean" in crops and uniform(self.seed, year, pk, 4) < CROP_MIX["soybean"] * (0.6 + 0.8 * uniform(tk, 4)):
            return "soybean"
        return "corn"

    def _loads(self, plot: str, village: str, area_mu: float, groups: tuple[str, ...], crop: str, year: int,
               devices: tuple[list[Device], list[Device]], window: tuple[str, str]) -> list[_Load]:
        """One plot's harvest: loads of at most LOAD_MU, on one day, by one harvester or at the scale."""
        scales, monitors = devices
        pk = key_of(plot)
        base = self.ctx.catalogue.crops[crop].yield_kg_per_mu * 2 * self._year_factor(year, crop)
        base *= (1 + 0.05 * (2 * uniform(key_of(village), key_of(crop), 5) - 1))
        base *= math.prod(GROUP_GAIN.get(g.kind, 1.0) for g in map(self.ctx.land.group, groups) if g is not None)
        u = uniform(self.seed, year, pk, 5)
        at_scale = bool(scales) and (u < GRAIN_SCALE_SHARE or not monitors)
        pool = scales if at_scale else monitors
        if not pool:
            return []
        # harvesters move between the plots of the township; the scale weighs what comes in
        dev = pool[int(uniform(self.seed, year, pk, 6) * len(pool))]
        named = not at_scale or bool(groups) or uniform(self.seed, year, pk, 7) >= SCALE_VILLAGE_ONLY
        (m0, d0), (m1, d1) = (map(int, w.split("-")) for w in window)
        w0 = datetime(year, m0, d0, tzinfo=self.tz).timestamp()
        w1 = datetime(year, m1, d1, 18, tzinfo=self.tz).timestamp()
        frac = (uniform(self.seed, year, pk, 8) + uniform(self.seed, year, pk, 9)) / 2  # peaks mid-window
        day = math.floor(frac * (w1 - w0) / 86400)
        wet, dry = HARVEST_MOISTURE.get(crop, (25.0, 15.0))
        n = max(1, math.ceil(area_mu / LOAD_MU))
        out: list[_Load] = []
        for i in range(n):
            k = (self.seed, year, pk, i)
            area = round(area_mu / n, 1)
            per_mu = base * (1 + 0.06 * _gauss(uniform(*k, 2), uniform(*k, 3)))
            hours = 7 + 10 * (i + uniform(*k, 6)) / n
            ts = int(min(w0 + day * 86400 + hours * 3600, w1)) * 1000
            moisture = round(wet + (dry - wet) * frac + 1.5 * (uniform(*k, 7) - 0.5), 1)
            out.append(_Load(plot, village, groups, crop, i, dev.id, dev.kind, named, ts, area, per_mu * area,
                             moisture))
        return out

    # -- MQTT traffic ------------------------------------------------------------------------------------
    def messages_between(self, start_ms: int, end_ms: int, step_ms: int,
                         steps_per_message: int = 24) -> Iterator[tuple[str, bytes]]:
        """(topic, payload) of every device for [start, end) at ``step_ms``: each station's records of
        ``steps_per_message`` steps as one backlog array (≤ 64 KiB), yields of the same span likewise."""
        for t, payload, _ in self._traffic(start_ms, end_ms, step_ms, steps_per_message):
            yield t, payload

    def _traffic(self, start_ms: int, end_ms: int, step_ms: int,
                 steps_per_message: int) -> Iterator[tuple[str, bytes, int]]:
        """As ``messages_between``, with the time each message would have been sent."""
        if step_ms <= 0 or steps_per_message <= 0:
            raise ValueError("step_ms and steps_per_message must be positive")
        first = -(-start_ms // step_ms) * step_ms
        for dev in self.ctx.registry:
            yield topic(dev.id, "status"), b"online", first
        span = step_ms * steps_per_message
        chunk = first
        while chunk < end_ms:
            times = range(chunk, min(end_ms, chunk + span), step_ms)
            sent = times[-1]
            for dev in self.stations:
                records = (telemetry_record(ts, self.readings_at(dev, ts, step_ms)) for ts in times)
                for payload in pack(records):
                    yield topic(dev.id, "telemetry"), payload, sent
            harvest: dict[str, list[SimYield]] = {}
            for y in self.yields_between(chunk, min(end_ms, chunk + span)):
                harvest.setdefault(y.device, []).append(y)
            for device, ys in harvest.items():
                weighed = max(sent, ys[-1].ts)  # sent once the last plot of the span is weighed
                for payload in pack(yield_record(y.record) for y in ys):
                    yield topic(device, "yield"), payload, weighed
            chunk += span

    def batches_between(self, start_ms: int, end_ms: int, step_ms: int, batch_records: int = 20_000,
                        steps_per_message: int = 24) -> Iterator[Batch]:
        """The traffic decoded by ingest's ``PayloadDecoder`` (received when it was sent) in batches."""
        batch = Batch(worker="simulator")
        for t, payload, sent in self._traffic(start_ms, end_ms, step_ms, steps_per_message):
            decoded = self.decoder.decode(t, payload, sent)
            batch.readings.extend(decoded.readings)
            batch.yields.extend(decoded.yields)
            batch.statuses.extend(decoded.statuses)
            batch.rejections.extend(decoded.rejections)
            batch.messages += 1
            if len(batch) >= batch_records:
                yield batch
                batch = Batch(worker="simulator")
        if len(batch) or batch.messages:
            yield batch

    def backfill(self, store: Store, start_ms: int, end_ms: int, step_ms: int = HOUR_MS,
                 progress: Progress | None = None) -> BackfillStats:
        """Write [start, end) of history into ``store``; ``progress(fraction, stats)`` after each commit."""
        stats = BackfillStats()
        began = time.perf_counter()
        for batch in self.batches_between(start_ms, end_ms, step_ms):
            store.write(batch)
            stats.messages += batch.messages
            stats.readings += len(batch.readings)
            stats.yields += len(batch.yields)
            stats.rejections += len(batch.rejections)
            for r in batch.rejections:
                stats.reasons[r.reason] = stats.reasons.get(r.reason, 0) + 1
            stats.seconds = time.perf_counter() - began
            if progress is not None:
                newest = max((r.ts for r in batch.readings[-1:]), default=start_ms)
                progress(min(1.0, (newest - start_ms) / max(1, end_ms - start_ms)), stats)
        if stats.rejections:
            log.warning("backfill: %d records rejected: %s", stats.rejections, stats.reasons)
        return stats

    # -- live ------------------------------------------------------------------------------------------
    def run_live(self, url: str, speed: float = 1.0, stop_event: threading.Event | None = None,
                 buffer_dir: Path | None = None, clock: Callable[[], int] = now_ms) -> None:
        """Publish every station's current readings each ``interval_s / speed`` seconds, and harvests
        as they happen, through one device client per device, until ``stop_event`` is set."""
        from .device import DeviceClient  # paho is only needed for live publishing

        stop = stop_event or threading.Event()
        tmp = None
        if buffer_dir is None:
            tmp = tempfile.TemporaryDirectory(prefix="nongyun-devices-")
            buffer_dir = Path(tmp.name)
        ca_file = self.ctx.settings.values.mqtt_ca_file  # mqtts:// brokers are verified against it
        clients = {d.id: DeviceClient(d.id, url, buffer_dir, ca_file=ca_file) for d in self.ctx.registry}
        try:
            for c in clients.values():
                c.start()
            due = {d.id: time.monotonic() for d in self.ctx.registry}
            start = clock()
            since = {d.id: start - d.interval_s * 1000 for d in self.ctx.registry}  # rain since the last report
            while not stop.is_set():
                now_mono = time.monotonic()
                for dev in self.ctx.registry:
                    if due[dev.id] > now_mono:
                        continue
                    due[dev.id] = now_mono + dev.interval_s / speed
                    ts = clock()
                    if dev.kind == "station":
                        readings = self.readings_at(dev, ts, max(1, ts - since[dev.id]))
                        clients[dev.id].publish_telemetry(ts, readings)
                    elif since[dev.id] >= start:  # harvests from now on, not the ones before the start
                        for y in self.yields_between(since[dev.id], ts):
                            if y.device == dev.id:
                                clients[dev.id].publish_yield(y.record)
                    since[dev.id] = ts
                stop.wait(max(0.05, min(due.values()) - time.monotonic()))
        finally:
            for c in clients.values():
                c.close()
            if tmp is not None:
                tmp.cleanup()


def _gauss(u1: float, u2: float) -> float:
    """Box-Muller: a standard normal from two uniforms."""
    return math.sqrt(-2 * math.log(1 - u1)) * math.cos(2 * math.pi * u2)
