"""``nongyun demo``: the whole service on one machine with nothing installed beyond the package.

A broker (the configured one when it answers, else an in-process one on that address), the embedded
store, a season of simulated history written straight into the store through the same payload
decoder as ingest, then live simulated devices publishing over MQTT into a real ingest worker, and
the web app. History already backfilled is kept: a second run only fills the gap since the last.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from .context import Context
from .records import Batch
from .times import now_ms

HOUR_MS = 3_600_000
MARKER = "demo-backfill.json"


def season_start(now: int, ctx: Context) -> int:
    """1 April of the current local year: sowing starts late April, so April shows the dry spring."""
    year = datetime.fromtimestamp(now / 1000, ctx.settings.tz).year
    return int(datetime(year, 4, 1, tzinfo=ctx.settings.tz).timestamp() * 1000)


def _progress(echo: Callable[..., Any], label: str) -> Callable[[float, Any], None]:
    """A one-line progress bar for the simulator's ``progress(fraction, stats)`` callback."""
    last = [-1]

    def progress(fraction: float, stats: Any) -> None:
        pct = int(100 * fraction)
        if pct != last[0] and (pct % 5 == 0 or fraction >= 1.0):
            last[0] = pct
            bar = "#" * (pct // 4) + "." * (25 - pct // 4)
            echo(f"\r{label} [{bar}] {pct:3d}%  {stats.readings:,} readings", nl=fraction >= 1.0)

    return progress


def backfill_yields(store: Any, district: Any, start: int, end: int) -> int:
    """Harvest records only (no readings) of [start, end), decoded as ingest would have decoded
    them when they were sent: last season's records are over a year old by now."""
    batch = Batch(worker="simulator")
    for y in district.yields_between(start, end):
        decoded = district.decoder.decode(f"nongyun/v1/{y.device}/yield", orjson.dumps(y.record), y.ts)
        batch.yields.extend(decoded.yields)
        batch.rejections.extend(decoded.rejections)
        batch.messages += 1
    store.write(batch)
    return len(batch.yields)


def backfill(ctx: Context, store: Any, district: Any, *, days: int | None, echo: Callable[..., Any]) -> None:
    """Fill history from the marker's end (or the season start) to now, hourly."""
    data_dir = Path(ctx.settings.data_dir)
    marker = data_dir / MARKER
    now = now_ms() // HOUR_MS * HOUR_MS
    start = now - days * 24 * HOUR_MS if days else season_start(now, ctx)
    prev = json.loads(marker.read_text()) if marker.exists() else None
    if prev and int(prev["start"]) <= start:
        start = max(start, int(prev["end"]))
    if now - start >= HOUR_MS:
        district.backfill(store, start, now, HOUR_MS, progress=_progress(echo, "backfilling readings"))
    if prev is None:
        # Harvests of this season and the last one, for year-on-year (同比) comparisons.
        year = datetime.fromtimestamp(now / 1000, ctx.settings.tz).year
        last_year = int(datetime(year - 1, 1, 1, tzinfo=ctx.settings.tz).timestamp() * 1000)
        n = backfill_yields(store, district, last_year, now)
        echo(f"harvest records of {year - 1} and {year}: {n:,}")
    data_dir.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps({"start": int(prev["start"]) if prev else start, "end": now}))


def run_demo(ctx: Context, *, days: int | None, seed: int, live: bool, echo: Callable[..., Any],
             stop: threading.Event | None = None, notes: Sequence[str] = ()) -> None:
    """``notes`` (the demo accounts) are printed after the URL, so both are the start-up's last lines."""
    from sensors.simulator import District

    from .broker import ensure_broker
    from .process import start_all, until_signal
    from .store import open_store

    settings = ctx.settings
    mqtt = settings.mqtt
    host, port = settings.http
    with ExitStack() as stack:
        broker = ensure_broker(mqtt.host, mqtt.port)
        if broker is not None:
            stack.callback(broker.stop)
            echo(f"started an in-process MQTT broker on {mqtt.host}:{mqtt.port}")
        else:
            echo(f"using the MQTT broker at {mqtt.host}:{mqtt.port}")
        store = open_store(settings)
        stack.callback(store.close)
        district = District(ctx, seed=seed)
        backfill(ctx, store, district, days=days, echo=echo)
        start_all(ctx, store, stack)
        signals = stack.enter_context(until_signal()) if stop is None else stop
        if live:
            sim = threading.Thread(target=district.run_live, name="simulator", daemon=True,
                                   kwargs={"url": settings.values.mqtt_url, "speed": 1.0, "stop_event": signals,
                                           "buffer_dir": Path(settings.data_dir) / "devices"})
            sim.start()
        echo(f"nongyun demo ready: http://{host}:{port}/  (API: http://{host}:{port}/api/v1/regions)")
        for line in notes:
            echo(line)
        signals.wait()
