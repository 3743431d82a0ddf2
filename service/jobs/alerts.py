"""Agronomic alert rules (config/alerts.toml): drought, frost, waterlogging, heat.

Evaluation is stateless apart from the store's one active alert per key: each run reads the hourly
values of the last few days (from the rollups, one query per rule for the whole district) and asks
of each village (or station) how long its newest values have been on the bad side of the raise
threshold, or on the good side of the clear threshold. Because the answer comes from the data and
not from what earlier runs saw, a restart, a skipped run or a second evaluation of the same window
changes nothing, and late data counts as soon as it is stored.
"""

from __future__ import annotations

from collections.abc import Callable

from ..context import Context
from ..store.base import Alert, InRegion, JobsStore, ReadingsQuery
from ..times import local_date
from .config import AlertsConfig, Rule, in_season

HOUR_MS = 3_600_000
Points = list[tuple[int, float]]


def held(points: Points, ok: Callable[[float], bool], max_gap_h: int) -> tuple[int, int] | None:
    """(start, duration ms) of the run of hourly values satisfying ``ok`` that ends with the newest
    one; None if the newest does not. Missing hours up to ``max_gap_h`` do not break a run."""
    if not points or not ok(points[-1][1]):
        return None
    start = points[-1][0]
    for t, v in reversed(points[:-1]):
        if start - t > (max_gap_h + 1) * HOUR_MS or not ok(v):
            break
        start = t
    return start, points[-1][0] + HOUR_MS - start


def rolling(points: Points, window_h: int, agg: str, first: int) -> Points:
    """Each hour's value aggregated with the ``window_h - 1`` hours before it; hours whose window
    starts before ``first`` (the query's start) are dropped, their windows being incomplete."""
    out: Points = []
    span = window_h * HOUR_MS
    for i, (t, _) in enumerate(points):
        if t - span + HOUR_MS < first:
            continue
        values = [v for u, v in points[: i + 1] if u > t - span]
        value = {"sum": sum(values), "min": min(values), "max": max(values)}.get(agg, sum(values) / len(values))
        out.append((t, value))
    return out


def evaluate(ctx: Context, store: JobsStore, cfg: AlertsConfig, now: int) -> str:
    district = InRegion.of(ctx.tree.district)
    active = {a.key: a for a in store.list_alerts(district, active=True)}
    raised = cleared = 0
    for rule in cfg.rules:
        r, c = _evaluate_rule(ctx, store, cfg, rule, active, now)
        raised += r
        cleared += c
    return f"{len(cfg.rules)} rules; raised {raised}, cleared {cleared}"


def _evaluate_rule(ctx: Context, store: JobsStore, cfg: AlertsConfig, rule: Rule, active: dict[str, Alert],
                   now: int) -> tuple[int, int]:
    tz = ctx.settings.tz
    today = local_date(now, tz)
    start = now - now % HOUR_MS - rule.lookback_h * HOUR_MS
    per_station = rule.per == "station"
    series = store.readings(ReadingsQuery(rule.metric, start, now, HOUR_MS, rule.agg,
                                          InRegion.of(ctx.tree.district),
                                          "device" if per_station else "village", tz))
    prefix = rule.id + ":"
    subjects = set(series) | {k[len(prefix):] for k in active if k.startswith(prefix)}
    raised = cleared = 0
    for subject in sorted(subjects):
        if per_station:
            device = ctx.registry.find(subject)
            if device is None:
                continue
            village, device_id = device.village, device.id
        else:
            village, device_id = subject, None
        key = prefix + subject
        alert = active.get(key)
        crop_id = cfg.crop_of(village)
        crop = ctx.catalogue.crops.get(crop_id)
        applies = (crop is not None and (rule.crops is None or crop_id in rule.crops)
                   and in_season(rule, (crop.sow[0], crop.harvest[1]), today))
        if not applies:
            if alert is not None:  # the season ended (or the crop changed): nothing left to watch
                cleared += store.clear_alert(key, now) is not None
            continue
        points = series.get(subject, [])
        if rule.window_h > 1:
            points = rolling(points, rule.window_h, rule.agg, start)
        if not points or now - points[-1][0] > cfg.jobs.stale_after_h * HOUR_MS:
            continue  # no recent data: decide nothing (an offline station is its own alert)
        if alert is None:
            run = held(points, rule.bad, cfg.jobs.max_gap_h)
            if run is not None and run[1] >= rule.raise_for_h * HOUR_MS:
                raised += store.open_alert(_alert(ctx, rule, key, village, device_id, run, points[-1][1])) is not None
        else:
            run = held(points, rule.recovered, cfg.jobs.max_gap_h)
            if run is not None and run[1] >= rule.clear_for_h * HOUR_MS:
                cleared += store.clear_alert(key, now) is not None
    return raised, cleared


def _alert(ctx: Context, rule: Rule, key: str, village: str, device: str | None, run: tuple[int, int],
           value: float) -> Alert:
    region = ctx.tree.get(village).name if ctx.tree.find(village) else village
    if device is not None:
        region = f"{region} {device}"
    message = rule.message.format(region=region, value=value, threshold=rule.raise_at, hours=run[1] // HOUR_MS)
    return Alert(key, rule.kind, rule.severity, village, device, message, run[0], value=value,
                 threshold=rule.raise_at)
