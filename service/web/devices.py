"""Device state as the API reports it: online or not, last seen, latest values, derived alerts.

One rule for "online" everywhere (device list, region counts, offline alerts, the jobs runner's
alerts): ``jobs.health.is_offline`` — offline when the last will said so and the device has sent
nothing since, or when it has been silent for more than N reporting intervals (config/alerts.toml).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

from ..context import Context
from ..jobs.config import AlertsConfig, StationHealth
from ..jobs.health import is_offline
from ..registry import Device
from ..store import Store
from ..store.base import DeviceLatest
from ..times import DAY_MS, format_local
from .schemas import AlertOut, DeviceOut, LatestValue

LOOKBACK_MS = 366 * DAY_MS  # how far back "last seen" looks: ingest refuses points over a year old anyway
_HEALTH: dict[str, StationHealth] = {}
LOW_BATTERY_V = 3.4
SUMMARY_WINDOW_MS = DAY_MS  # the region summary averages stations' latest values of the last 24 h


@dataclass(frozen=True)
class DeviceState:
    device: Device
    latest: DeviceLatest | None
    online: bool


def station_health(ctx: Context) -> StationHealth:
    """The offline rule of config/alerts.toml, the one the jobs runner raises alerts by."""
    path = Path(ctx.settings.config_dir) / "alerts.toml"
    key = str(path)
    if key not in _HEALTH:
        _HEALTH[key] = AlertsConfig.load(path, ctx.catalogue).station_health if path.exists() else StationHealth()
    return _HEALTH[key]


def is_online(device: Device, info: DeviceLatest | None, now: int, health: StationHealth) -> bool:
    """Online unless the jobs runner's rule says offline; a device never heard of is not online."""
    if info is None or (info.last_seen is None and info.status is None):
        return False
    offline, since = is_offline(device, info, now, health)
    if since is None:  # heard of only through yield records (scales, harvesters): judge by last seen
        limit = health.offline_after_intervals * device.interval_s * 1000
        return info.last_seen is not None and now - info.last_seen <= limit
    return not offline


def states(ctx: Context, store: Store, region_code: str, now: int) -> list[DeviceState]:
    """Every registered device under the region with what the store knows of it, sorted by id."""
    devices = sorted(ctx.registry.under(region_code), key=lambda d: d.id)
    if not devices:
        return []
    known = store.latest(ctx.tree.get(region_code).village_range(), now - LOOKBACK_MS)
    health = station_health(ctx)
    return [DeviceState(d, known.get(d.id), is_online(d, known.get(d.id), now, health)) for d in devices]


def device_out(s: DeviceState, tz: ZoneInfo) -> DeviceOut:
    seen = s.latest.last_seen if s.latest else None
    return DeviceOut(id=s.device.id, kind=s.device.kind, village=s.device.village, township=s.device.township,
                     metrics=list(s.device.metrics), last_seen=format_local(seen, tz) if seen is not None else None,
                     online=s.online)


def summary(ctx: Context, found: Iterable[DeviceState], now: int) -> dict[str, LatestValue]:
    """Per metric, the mean over stations of each one's latest value of the last 24 h."""
    acc: dict[str, list[tuple[int, float]]] = {}
    for s in found:
        if s.device.kind != "station" or s.latest is None:
            continue
        for metric, (ts, value) in s.latest.values.items():
            if now - ts <= SUMMARY_WINDOW_MS:
                acc.setdefault(metric, []).append((ts, value))
    tz = ctx.settings.tz
    out: dict[str, LatestValue] = {}
    for metric in sorted(acc, key=lambda m: list(ctx.catalogue.metrics).index(m) if m in ctx.catalogue.metrics
                         else len(ctx.catalogue.metrics)):
        values = acc[metric]
        known = ctx.catalogue.metrics.get(metric)
        out[metric] = LatestValue(value=round(sum(v for _, v in values) / len(values), 3),
                                  unit=known.unit if known else "", devices=len(values),
                                  ts=format_local(max(t for t, _ in values), tz))
    return out


def alerts(ctx: Context, found: Iterable[DeviceState]) -> list[AlertOut]:
    """Device alerts derived from the current state: stations offline, batteries below 3.4 V."""
    tz = ctx.settings.tz
    out: list[AlertOut] = []
    for s in found:
        dev, info = s.device, s.latest
        village = ctx.tree.get(dev.village).name
        if dev.kind == "station" and not s.online:
            since_ms = info.status_ts if info and info.status is False else (info.last_seen if info else None)
            since = format_local(since_ms, tz) if since_ms is not None else None
            message = f"{village} {dev.id} 离线，" + (f"最后上报 {since}" if since else "从未上报")
            out.append(AlertOut(id=f"device_offline:{dev.id}", kind="device_offline", severity="warning",
                                region=dev.village, device=dev.id, message=message, since=since, active=True))
        battery = info.values.get("battery") if info else None
        if battery is not None and battery[1] < LOW_BATTERY_V:
            ts, volts = battery
            out.append(AlertOut(id=f"battery_low:{dev.id}", kind="battery_low", severity="warning",
                                region=dev.village, device=dev.id,
                                message=f"{village} {dev.id} 电池电压 {volts:.2f} V，低于 {LOW_BATTERY_V} V",
                                since=format_local(ts, tz), active=True))
    return out
