"""Dashboard API latency at a full season of history, and how it grows from 30 to 180 days.

    python bench/query.py                     # 30 and 180 days, raw and rolled up, 30 calls each
    python bench/query.py --days 30,180 --reps 50 --keep /tmp/nongyun-bench   # reuse generated stores

For each history length, the simulator (``sensors.simulator.District.backfill``) writes every device
of config/devices.yaml at a 10-minute interval, harvests included, straight into a SqliteStore
through ``store.write(Batch)``; no MQTT. Then a separate process (the "web process": its peak RSS
is reported) builds ``service.web.create_app`` and times the dashboard's API calls through Flask's
test client, twice: ``raw`` with every rollup window still dirty (the store answers from raw points,
as it did before rollups existed) and ``rollup`` after ``refresh_rollups`` has caught up, as the jobs
runner keeps it in production. Each call runs ``--reps`` times after two warm-up calls;
p50/p95/max are of those.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common
from common import ROOT

from sensors.simulator import District
from service.demo import backfill_yields
from service.settings import load
from service.store.sqlite import SqliteStore
from service.times import DAY_MS, now_ms

STEP_MS = 600_000
DISTRICT, TOWNSHIP, VILLAGE = "211204", "211204101", "211204101203"  # 清河区, 张相镇, a village of it


def generate(db: Path, days: int) -> dict[str, float]:
    """``days`` of history ending now, for every device, written in the simulator's large batches."""
    ctx = common.context()
    store = SqliteStore(db, ctx.settings.tz)
    end = now_ms() // STEP_MS * STEP_MS
    t0 = time.perf_counter()
    district = District(ctx)
    stats = district.backfill(store, end - days * DAY_MS, end, step_ms=STEP_MS)
    # The season's harvests whatever the history length, as a deployment has them: yields calls
    # then compare like with like (30 days before late November hold no harvest of their own).
    year_start = int(datetime(datetime.fromtimestamp(end / 1000, ctx.settings.tz).year, 1, 1,
                              tzinfo=ctx.settings.tz).timestamp() * 1000)
    stats.yields = max(stats.yields, backfill_yields(store, district, year_start, end))
    seconds = time.perf_counter() - t0
    if stats.rejections:
        raise AssertionError(f"the simulator's history was rejected: {stats.reasons}")
    store.close()
    values = stats.readings  # records; values counted in the store below
    rows = common.store_totals(db)[0]
    print(f"  generated {days} days: {values:,} readings ({rows:,} values), {stats.yields:,} harvest records "
          f"in {seconds:.0f} s ({rows / seconds:,.0f} values/s written); {db.stat().st_size / 2**20:.0f} MiB",
          flush=True)
    return {"readings": values, "values": rows, "yields": stats.yields, "seconds": seconds, "end": end}


def refresh(db: Path) -> float:
    ctx = common.context()
    store = SqliteStore(db, ctx.settings.tz)
    t0 = time.perf_counter()
    windows = 0
    while True:
        progress = store.refresh_rollups(2000)
        windows += progress.windows
        if not progress.remaining:
            break
    seconds = time.perf_counter() - t0
    store.close()
    print(f"  rolled up {windows:,} (metric, hour) windows in {seconds:.1f} s", flush=True)
    return seconds


def copy_store(src: Path, dst: Path) -> None:
    """A consistent copy through SQLite's backup API (the WAL included)."""
    import sqlite3

    dst.unlink(missing_ok=True)
    with sqlite3.connect(src) as a, sqlite3.connect(dst) as b:
        a.backup(b)
    a.close()
    b.close()


def calls(end_ms: int) -> dict[str, str]:
    """The dashboard's calls, ending at the newest data."""
    tz = common.context().settings.tz

    def iso(ms: int) -> str:
        return datetime.fromtimestamp(ms / 1000, tz).isoformat()

    year = datetime.fromtimestamp(end_ms / 1000, tz).year
    r = "/api/v1/readings?agg=mean"
    return {
        "district yields": f"/api/v1/yields?region={DISTRICT}&year={year}",
        "township yields": f"/api/v1/yields?region={TOWNSHIP}&year={year}",
        "township readings 7 d hourly": f"{r}&region={TOWNSHIP}&metric=soil_moisture&every=1h"
                                        f"&start={iso(end_ms - 7 * DAY_MS)}&end={iso(end_ms)}",
        "district readings 7 d hourly": f"{r}&region={DISTRICT}&metric=air_temp&every=1h"
                                        f"&start={iso(end_ms - 7 * DAY_MS)}&end={iso(end_ms)}",
        "village readings 90 d daily": f"{r}&region={VILLAGE}&metric=air_temp&every=1d"
                                       f"&start={iso(end_ms - 90 * DAY_MS)}&end={iso(end_ms)}",
        "latest per device (township)": f"/api/v1/devices?region={TOWNSHIP}",
        "latest per device (district)": f"/api/v1/devices?region={DISTRICT}",
    }


def measure(db: Path, end_ms: int, reps: int) -> dict[str, Any]:
    """In the web process: the app over the store, each call timed ``reps`` times."""
    from urllib.parse import quote

    from service.context import build
    from service.web import create_app

    settings = load(common.CONFIG, env={}, overrides={"store.data_dir": str(db.parent), "web.auth": "off"})
    store = SqliteStore(db, settings.tz)
    app = create_app(build(settings), store)
    client = app.test_client()
    out: dict[str, Any] = {}
    for name, url in calls(end_ms).items():
        url = url.replace("+", quote("+"))
        for _ in range(2):
            resp = client.get(url)
            if resp.status_code != 200:
                raise AssertionError(f"{url}: {resp.status_code} {resp.get_data(as_text=True)[:300]}")
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            resp = client.get(url)
            times.append((time.perf_counter() - t0) * 1000)
            assert resp.status_code == 200
        times.sort()
        out[name] = {"p50": statistics.median(times), "p95": times[min(len(times) - 1, round(0.95 * len(times)) - 1)],
                     "max": times[-1], "bytes": len(resp.get_data())}
    store.close()
    out["peak_rss_mib"] = _vm_hwm() / 1024
    return out


def _vm_hwm() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def measure_in_child(db: Path, end_ms: int, reps: int) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, __file__, "--measure", str(db), str(end_ms), str(reps)],
                          capture_output=True, text=True, cwd=ROOT, check=False)
    if proc.returncode:
        raise RuntimeError(proc.stderr[-2000:])
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def table(results: dict[str, dict[str, Any]]) -> None:
    """One row per call; columns per (history, plan)."""
    labels = list(results)
    names = [k for k in next(iter(results.values())) if k != "peak_rss_mib"]
    width = max(len(n) for n in names)
    print(f"{'p50 / p95 / max ms':<{width}}  " + "  ".join(f"{label:>22}" for label in labels))
    for name in names:
        cells = [results[label][name] for label in labels]
        print(f"{name:<{width}}  " + "  ".join(f"{c['p50']:6.1f} {c['p95']:6.1f} {c['max']:7.1f}" for c in cells))
    print(f"{'web process peak RSS MiB':<{width}}  " + "  ".join(f"{results[label]['peak_rss_mib']:22.0f}"
                                                             for label in labels))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--measure":
        print(json.dumps(measure(Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))))
        return
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--days", default="30,180", help="history lengths to compare")
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--plans", default="raw,rollup", help="raw (rollups dirty) and/or rollup (refreshed)")
    ap.add_argument("--keep", type=Path, help="keep (and reuse) generated stores in this folder")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()
    print(common.machine(), flush=True)
    work = args.keep or Path(tempfile.mkdtemp(prefix="nongyun-bench-query-"))
    work.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict[str, Any]] = {}
    info: dict[str, Any] = {}
    for days in [int(d) for d in args.days.split(",")]:
        db = work / f"season-{days}d" / "nongyun.sqlite3"
        meta = db.with_suffix(".json")
        if meta.exists() and db.exists():
            gen = json.loads(meta.read_text())
            print(f"  reusing {db} ({days} days, generated {gen['values']:,} values)", flush=True)
        else:
            if db.parent.exists():
                for f in db.parent.iterdir():
                    f.unlink()
            db.parent.mkdir(parents=True, exist_ok=True)
            gen = generate(db, days)
            meta.write_text(json.dumps(gen))
        info[f"{days}d"] = dict(gen)
        plans = args.plans.split(",")
        if "raw" in plans:
            results[f"{days} d raw"] = measure_in_child(db, int(gen["end"]), args.reps)
        if "rollup" in plans:
            rolled = db.parent / "rolled" / db.name  # the raw store stays raw for the next run
            rolled.parent.mkdir(exist_ok=True)
            copy_store(db, rolled)
            info[f"{days}d"]["rollup_seconds"] = refresh(rolled)
            results[f"{days} d rollup"] = measure_in_child(rolled, int(gen["end"]), args.reps)
    table(results)
    print(f"load after: {common.machine().split('; ')[1]}")
    if args.json:
        args.json.write_text(json.dumps({"results": results, "generated": info}, indent=2))
    if not args.keep:
        import shutil

        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
