"""Points an InfluxDB server's storage hands over per dashboard API call: what each call costs it.

    python bench/points_read.py                # 7 days of 10-minute history for every station
    python bench/points_read.py --days 90 --json out.json

The district dashboard's calls (nongyun.js ``cardData``, the township and device pages) run through
the Flask test client against the InfluxDB backend on the protocol-faithful fake of
tests/fake_influx.py. For every Flux query a call sends, ``tests/flux_pushdown.py`` (a model of
InfluxDB's planner: which ``range |> filter |> last/aggregateWindow`` chains run in storage) counts
the points storage returns, and the stored points the query's range covers. The count is made
from the query text the store actually sent, so the same script measures an older build's
templates too (copy this file and tests/flux_pushdown.py into its checkout; bench/README.md has
the figures of both).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import common  # noqa: E402

from service.context import build  # noqa: E402
from service.records import Batch, Reading  # noqa: E402
from service.settings import load  # noqa: E402
from service.times import format_local, now_ms  # noqa: E402
from service.web import create_app  # noqa: E402
from tests.fake_influx import FakeInflux  # noqa: E402
from tests.flux_pushdown import storage_points  # noqa: E402
from tests.store.influx_backends import fake_influx_store  # noqa: E402

STEP_MS = 600_000
DAY_MS = 86_400_000
DISTRICT, TOWNSHIP, VILLAGE = "211204", "211204101", "211204101203"


def calls(now: int, tz: Any) -> dict[str, str]:
    def t(ms: int) -> str:
        return format_local(ms, tz).replace("+", "%2B")

    today = now - now % DAY_MS - 8 * 3_600_000
    return {
        "devices (district)": f"/api/v1/devices?region={DISTRICT}",
        "alerts (district, active)": f"/api/v1/alerts?region={DISTRICT}&active=true",
        "yields (district, by township)": f"/api/v1/yields?region={DISTRICT}&group_by=township",
        "yields (district, by year)": f"/api/v1/yields?region={DISTRICT}&group_by=year",
        "readings soil today (district, by township)":
            f"/api/v1/readings?region={DISTRICT}&metric=soil_moisture&start={t(today)}&end={t(now)}&every=1d"
            "&group_by=township",
        "readings rain 24 h (district, by device)":
            f"/api/v1/readings?region={DISTRICT}&metric=rainfall&start={t(now - DAY_MS)}&end={t(now)}&every=1h"
            "&agg=sum&group_by=device",
        "readings soil 7 d hourly (township)":
            f"/api/v1/readings?region={TOWNSHIP}&metric=soil_moisture&start={t(now - 7 * DAY_MS)}&end={t(now)}"
            "&every=1h",
        "region node (township)": f"/api/v1/regions/{TOWNSHIP}",
        "device": "/api/v1/devices/qh-st-101203-1",
        "health (counters)": "/api/v1/health",
    }



def _windows(params: dict[str, Any]) -> Any:
    """Window index of a row time for the counting (UTC-aligned: the count, not the labels, matters)."""
    def window(t: int, every: str) -> int:
        span = params.get(every) or 3_600_000_000_000  # a parameter (ns) or the rollups' literal 1h
        return int(t // int(span))
    return window


def main() -> None:
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # the fake server's request log
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=7, help="history (the fake evaluates in Python: ~10 s a day)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    fake = FakeInflux().start()
    store = fake_influx_store(fake)
    settings = load(ROOT / "config", env={}, overrides={"web.auth": "off", "store.data_dir": "/tmp/nongyun-points"})
    ctx = build(settings)
    now = now_ms() // STEP_MS * STEP_MS
    stations = [d for d in ctx.registry if d.kind == "station"]
    t0 = time.perf_counter()
    batch: list[Reading] = []
    for ts in range(now - args.days * DAY_MS, now, STEP_MS):
        for d in stations:
            batch.append(Reading(d.id, d.village, ts, {m: 1.0 for m in d.metrics}))
        if len(batch) >= 5000:
            store.write(Batch(readings=batch, messages=len(batch), worker="bench"))
            batch = []
    if batch:
        store.write(Batch(readings=batch, messages=len(batch), worker="bench"))
    stored = sum(len(fields) for b in fake.buckets.values() for times in b.series.values()
                 for fields in times.values())
    client = create_app(ctx, store).test_client()
    out: dict[str, Any] = {"days": args.days, "stations": len(stations), "stored_points": stored,
                           "write_s": round(time.perf_counter() - t0, 1), "calls": {}}
    print(common.machine())
    print(f"{args.days} days, {len(stations)} stations, {stored:,} stored points")
    print(f"{'call':46} {'queries':>7} {'in ranges':>12} {'storage hands over':>19}")
    for name, url in calls(now, ctx.settings.tz).items():
        fake.queries.clear()
        resp = client.get(url)
        assert resp.status_code == 200, (url, resp.get_data(as_text=True)[:300])
        covered = read = 0
        for log in fake.queries:
            bucket = next(b for b in fake.buckets.values() if b.name == log.bucket)
            rows = list(FakeInflux._rows(bucket, log.params["_start"], log.params["_stop"]))
            covered += len(rows)
            read += storage_points(log.text, log.params, rows, _windows(log.params))
        out["calls"][name] = {"queries": len(fake.queries), "in_range": covered, "read": read}
        print(f"{name:46} {len(fake.queries):7} {covered:12,} {read:19,}")
    store.close()
    fake.stop()
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
