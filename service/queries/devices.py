"""Device state: online or not, last seen, latest values, and a region's summary of them.

One rule for "online" everywhere (device list, region counts, the jobs runner's offline alerts):
``jobs.health.is_offline`` with the thresholds of config/alerts.toml — offline when the last will
said so and the device has sent nothing since, or when it has been silent for more than N
reporting intervals.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..context import Context
from ..jobs.config import StationHealth
from ..jobs.health import LOOKBACK_MS, is_offline
from ..registry import Device
from ..store import Store
from ..store.base import DeviceLatest, InRegion
from ..times import DAY_MS

SUMMARY_WINDOW_MS = DAY_MS  # the region summary averages stations' latest values of the last 24 h


@dataclass(frozen=True)
class DeviceState:
    device: Device
    latest: DeviceLatest | None
    online: bool

    @property
    def last_seen(self) -> int | None:
        return self.latest.last_seen if self.latest else None


@dataclass(frozen=True)
class LatestSummary:
    value: float  # mean over stations of each one's latest value
    unit: str
    devices: int
    ts: int  # the newest of those values


def is_online(device: Device, info: DeviceLatest | None, now: int, health: StationHealth) -> bool:
    """Online unless the jobs runner's rule says offline; a device never heard of is not online."""
    if info is None or (info.last_seen is None and info.status is None):
        return False
    offline, since = is_offline(device, info, now, health)
    if since is None:  # heard of only through yield records (scales, harvesters): judge by last seen
        limit = health.offline_after_intervals * device.interval_s * 1000
        return info.last_seen is not None and now - info.last_seen <= limit
    return not offline


def device_states(ctx: Context, store: Store, region_code: str, now: int) -> list[DeviceState]:
    """Every registered device under the region with what the store knows of it, sorted by id."""
    devices = sorted(ctx.registry.under(region_code), key=lambda d: d.id)
    if not devices:
        return []
    known = store.latest(InRegion.of(ctx.tree.get(region_code)), now - LOOKBACK_MS)
    health = ctx.alerts.station_health
    return [DeviceState(d, known.get(d.id), is_online(d, known.get(d.id), now, health)) for d in devices]


def latest_summary(ctx: Context, found: Iterable[DeviceState], now: int) -> dict[str, LatestSummary]:
    """Per metric (catalogue order), the mean over stations of each one's latest value of the last 24 h."""
    acc: dict[str, list[tuple[int, float]]] = {}
    for s in found:
        if s.device.kind != "station" or s.latest is None:
            continue
        for metric, (ts, value) in s.latest.values.items():
            if now - ts <= SUMMARY_WINDOW_MS:
                acc.setdefault(metric, []).append((ts, value))
    order = list(ctx.catalogue.metrics)
    out: dict[str, LatestSummary] = {}
    for metric in sorted(acc, key=lambda m: order.index(m) if m in order else len(order)):
        values = acc[metric]
        known = ctx.catalogue.metrics.get(metric)
        out[metric] = LatestSummary(sum(v for _, v in values) / len(values), known.unit if known else "",
                                    len(values), max(t for t, _ in values))
    return out
