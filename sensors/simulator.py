"""A simulated district: every device of the registry, publishing like the real ones.

Stations report the weather model of ``sensors.weather`` (what each station measures is its
``metrics`` in config/devices.yaml); yield monitors and grain scales report harvested plots in the
crops' harvest windows of config/catalogue.toml. Three uses:

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

from .weather import Climate, key_of, uniform, uniform2
from .wire import pack, telemetry_record, topic, yield_record

log = logging.getLogger(__name__)

HOUR_MS = 3_600_000
FAILING_BATTERIES = 3  # stations whose cell is worn out and sags below 3.4 V at night
DISTRICT_AREA_MU = 205_000  # sown area of the district's farmland in an average year (23万亩 cultivated)
CROP_MIX = {"corn": 0.87, "rice": 0.08, "soybean": 0.05}  # Tieling: corn ~89.5 % of grain area
GRAIN_SCALE_SHARE = 0.4  # of a township's harvest weighed at its grain station; the rest on harvesters
PLOT_MU = (5.0, 60.0)
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
        self.climate = Climate(seed)
        self.stations = [d for d in ctx.registry if d.kind == "station"]
        self.harvest_devices = [d for d in ctx.registry if d.kind in ("yield_monitor", "grain_scale")]
        self.decoder = PayloadDecoder(ctx.registry, ctx.catalogue)
        self._ranges = {m.id: (m.min, m.max) for m in ctx.catalogue.metrics.values()}
        by_wear = sorted(self.stations, key=lambda d: uniform(seed, key_of(d.id), 77))
        self.failing = frozenset(d.id for d in by_wear[:FAILING_BATTERIES])
        self._keys = {d.id: key_of(d.id) for d in ctx.registry}
        self._plans: dict[str, list[tuple[str, float, float, float, int]]] = {}
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
        crops = {c: self.ctx.catalogue.crops[c] for c in CROP_MIX if c in self.ctx.catalogue.crops}
        total_mu = DISTRICT_AREA_MU * (1 + 0.03 * (2 * uniform(self.seed, year, 1) - 1))
        farms = {t.code: sum(1 for v in t.villages() if v.kind == "village") for t in self.ctx.tree.district.children}
        weights = {code: n * (0.85 + 0.3 * uniform(key_of(code), 2)) for code, n in farms.items() if n}
        out: list[SimYield] = []
        for township, weight in weights.items():
            devices = [d for d in self.harvest_devices if d.village.startswith(township)]
            if not devices:
                continue
            area = total_mu * weight / sum(weights.values())
            tk = key_of(township)
            mix = {"corn": CROP_MIX["corn"], "rice": CROP_MIX["rice"] * (0.4 + 1.2 * uniform(tk, 3)),
                   "soybean": CROP_MIX["soybean"] * (0.6 + 0.8 * uniform(tk, 4))}
            mix_total = sum(mix[c] for c in crops)
            scales = [d for d in devices if d.kind == "grain_scale"]
            shares = {d.id: (GRAIN_SCALE_SHARE if d.kind == "grain_scale" else
                             (1 - GRAIN_SCALE_SHARE * bool(scales)) / (len(devices) - len(scales))) for d in devices}
            for dev in devices:
                for crop_id, crop in crops.items():
                    target = area * shares[dev.id] * mix[crop_id] / mix_total
                    out.extend(self._plots(dev, crop_id, crop.yield_kg_per_mu, crop.plausible_kg_per_mu,
                                           crop.harvest, year, target))
        out.sort(key=lambda y: (y.ts, y.device))
        return out

    def _plots(self, dev: Device, crop: str, kg_per_mu: float, plausible: tuple[float, float],
               window: tuple[str, str], year: int, target_mu: float) -> list[SimYield]:
        vk = key_of(dev.village)
        base = kg_per_mu * self._year_factor(year, crop) * (1 + 0.05 * (2 * uniform(vk, key_of(crop), 5) - 1))
        (m0, d0), (m1, d1) = (map(int, w.split("-")) for w in window)
        w0 = datetime(year, m0, d0, tzinfo=self.tz).timestamp()
        w1 = datetime(year, m1, d1, 18, tzinfo=self.tz).timestamp()
        wet, dry = HARVEST_MOISTURE.get(crop, (25.0, 15.0))
        out: list[SimYield] = []
        done = 0.0
        n = 0
        while done < target_mu:
            k = (self.seed, year, self._keys[dev.id], key_of(crop), n)
            area = PLOT_MU[0] + (PLOT_MU[1] - PLOT_MU[0]) * uniform(*k, 1) ** 1.6  # many small plots
            area = round(min(area, max(PLOT_MU[0], target_mu - done)), 1)
            per_mu = base * (1 + 0.06 * _gauss(uniform(*k, 2), uniform(*k, 3)))
            per_mu = min(plausible[1], max(plausible[0], per_mu))
            frac = (uniform(*k, 4) + uniform(*k, 5)) / 2  # harvests peak in the middle of the window
            day = math.floor(frac * (w1 - w0) / 86400)
            ts_s = w0 + day * 86400 + (7 + 11 * uniform(*k, 6)) * 3600
            ts = int(min(ts_s, w1)) * 1000
            moisture = wet + (dry - wet) * frac + 1.5 * (uniform(*k, 7) - 0.5)
            record = {"ts": ts, "crop": crop, "area_mu": area, "yield_jin": round(per_mu * 2 * area),
                      "plot": f"{dev.village[6:]}-{crop}-{n:03d}", "moisture_pct": round(moisture, 1)}
            out.append(SimYield(dev.id, ts, record))
            done += area
            n += 1
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
        clients = {d.id: DeviceClient(d.id, url, buffer_dir) for d in self.ctx.registry}
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
