"""Station health: offline stations and low batteries become alerts, and clear themselves.

A station is offline when its last retained status says ``offline`` (the broker publishes the last
will when the connection drops) and it has sent nothing since, or when it has been silent for more
than ``offline_after_intervals`` of its reporting interval. It is back the moment it speaks again.
Stations that never reported raise nothing: a new registry entry is not an outage (the device list
shows them as offline all the same). Batteries use two thresholds (low / clear) against flapping.
"""

from __future__ import annotations

from ..context import Context
from ..registry import Device
from ..store.base import Alert, DeviceLatest, InRegion, JobsStore
from ..times import DAY_MS, format_local
from .config import StationHealth

LOOKBACK_MS = 366 * DAY_MS


def _last_spoke(info: DeviceLatest) -> int | None:
    """Newest reading, or an ``online`` status: a status ``offline`` is the broker speaking, not the device."""
    times = [ts for ts, _ in info.values.values()]
    if info.status is True and info.status_ts is not None:
        times.append(info.status_ts)
    return max(times) if times else None


def is_offline(device: Device, info: DeviceLatest | None, now: int, cfg: StationHealth) -> tuple[bool, int | None]:
    """(offline?, since when) for a station that has been heard of; (False, None) if never."""
    if info is None:
        return False, None
    spoke = _last_spoke(info)
    if info.status is False and info.status_ts is not None and (spoke is None or info.status_ts >= spoke):
        return True, info.status_ts
    if spoke is None:
        return False, None
    return now - spoke > cfg.offline_after_intervals * device.interval_s * 1000, spoke


def check(ctx: Context, store: JobsStore, cfg: StationHealth, now: int) -> str:
    district = InRegion.of(ctx.tree.district)
    known = store.latest(district, now - LOOKBACK_MS)
    active = {a.key for a in store.list_alerts(district, active=True)
              if a.kind in ("device_offline", "battery_low")}
    tz = ctx.settings.tz
    raised = cleared = offline = 0
    for dev in ctx.registry:
        if dev.kind != "station":
            continue
        info = known.get(dev.id)
        village = ctx.tree.get(dev.village).name
        down, since = is_offline(dev, info, now, cfg)
        offline += down
        key = f"device_offline:{dev.id}"
        if down and key not in active and since is not None:
            message = f"{village} {dev.id} 离线，最后上报 {format_local(since, tz)}"
            raised += store.open_alert(Alert(key, "device_offline", "warning", dev.village, dev.id, message,
                                             since)) is not None
        elif not down and key in active:
            cleared += store.clear_alert(key, now) is not None
        battery = info.values.get("battery") if info else None
        key = f"battery_low:{dev.id}"
        if battery is None:
            continue
        ts, volts = battery
        if volts < cfg.battery_low_v and key not in active:
            message = f"{village} {dev.id} 电池电压 {volts:.2f} V，低于 {cfg.battery_low_v} V"
            raised += store.open_alert(Alert(key, "battery_low", "warning", dev.village, dev.id, message, ts,
                                             value=volts, threshold=cfg.battery_low_v)) is not None
        elif volts >= cfg.battery_clear_v and key in active:
            cleared += store.clear_alert(key, now) is not None
    return f"{offline} stations offline; raised {raised}, cleared {cleared}"
