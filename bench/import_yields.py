"""Importing a harvest ledger: parse + validate + store N rows (.xlsx and .csv) into a fresh SQLite store.

    python bench/import_yields.py                       # 10,000 rows, xlsx and csv, both sinks, 3 runs each
    python bench/import_yields.py --rows 2000 --runs 1 --sinks records --json out.json

The ledger is what a district's clerks would send: the yields export's columns (收获记录), a row per
harvest on the registered plots of every farming village, Chinese crop names, 亩 and 斤 typed with
thousands separators in the CSV, times over last year's harvest season. Each run imports the file
through ``yield_import.import_file`` (what ``nongyun import yields`` runs) into a new store, through
the record store (``RecordsSink``: an id and a first revision per record) or a plain ``Store.write``
(``StoreSink``), and checks that every row was stored; then imports it again into the same store and
checks that nothing was added (the re-import is timed too: it is what a clerk's second upload
costs). The target of issue 18 is 10,000 rows in ≤ 10 s on the 2-core machine: the ratio printed is
time / 10 s.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import common  # noqa: E402
from openpyxl import Workbook  # noqa: E402

from service.context import Context  # noqa: E402
from service.payloads import PayloadDecoder  # noqa: E402
from service.store.base import InRegion  # noqa: E402
from service.store.sqlite import SqliteStore  # noqa: E402
from service.times import now_ms  # noqa: E402
from service.yield_import import RecordsSink, Sink, StoreSink, import_file  # noqa: E402

TARGET_S, TARGET_ROWS = 10.0, 10_000
HEADERS = ["收获时间", "乡镇（街道）", "村（社区）", "作物", "地块", "面积（亩）", "产量（斤）"]  # the export's columns


def ledger_rows(ctx: Context, n: int) -> list[list[Any]]:
    """``n`` distinct harvests on registered plots, 单产 inside each crop's plausible spread."""
    plots = ctx.land.plots()
    crops = [c for c in ctx.catalogue.crops.values() if c.id in ("corn", "rice", "soybean")]
    start = datetime(datetime.now().year - 1, 9, 20, 7, 0)
    rows: list[list[Any]] = []
    for i in range(n):
        plot = plots[i % len(plots)]
        crop = crops[i % len(crops)]
        town, village = ctx.tree.get(plot.village[:9]), ctx.tree.get(plot.village)
        mu = round(plot.area_ha * 15 * (0.6 + (i % 5) / 10), 2)
        lo, hi = crop.plausible_kg_per_mu
        jin = round(mu * 2 * (lo + (hi - lo) * ((i * 37) % 100) / 100), 1)
        ts = start + timedelta(minutes=13 * i)
        rows.append([ts, town.name_zh, village.name_zh, crop.name_zh, plot.id, mu, jin])
    return rows


def as_xlsx(rows: list[list[Any]]) -> bytes:
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("收获记录")
    ws.append(["清河区 收获记录明细"])
    ws.append(HEADERS)
    for r in rows:
        ws.append([r[0].strftime("%Y-%m-%dT%H:%M:%S+08:00"), *r[1:]])  # the export's own local-time text
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def as_csv(rows: list[list[Any]]) -> bytes:
    """As Excel in China saves it: GB18030, dates as typed, figures with thousands separators."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(HEADERS)
    for r in rows:
        w.writerow([r[0].strftime("%Y/%m/%d %H:%M"), *r[1:5], f"{r[5]:,}", f"{r[6]:,}"])
    return buf.getvalue().encode("gb18030")


def one_run(ctx: Context, content: bytes, name: str, n: int, folder: Path, kind: str) -> dict[str, float]:
    decoder = PayloadDecoder(ctx.registry, ctx.catalogue, ctx.land, ctx.tree)
    store = SqliteStore(folder / f"{name}-{kind}.sqlite3")
    try:
        district = InRegion.of(ctx.tree.district)
        sink: Sink = RecordsSink(store, district, now_ms()) if kind == "records" else StoreSink(store, district)
        t0 = time.perf_counter()
        first = import_file(ctx, decoder, sink, content, name, dry_run=False)
        t1 = time.perf_counter()
        again = import_file(ctx, decoder, sink, content, name, dry_run=False)
        t2 = time.perf_counter()
        held = len(store.yield_records(InRegion.of(ctx.tree.district), 0, 2**62, limit=10 * n))
    finally:
        store.close()
    if first.errors or first.added != n or held != n or again.added or again.unchanged != n:
        raise SystemExit(f"{name}: wrong result: {first.as_json()['errors'][:3]} added {first.added}, "
                         f"stored {held}, again added {again.added} unchanged {again.unchanged}")
    return {"import_s": t1 - t0, "reimport_s": t2 - t1}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=TARGET_ROWS)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sinks", default="records,points",
                        help="records: the record store (ids, revisions); points: a plain Store.write")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    ctx = common.context()
    print(common.machine())
    rows = ledger_rows(ctx, args.rows)
    files = {"xlsx": as_xlsx(rows), "csv": as_csv(rows)}
    out: dict[str, Any] = {"rows": args.rows, "runs": args.runs, "formats": {}}
    kinds = args.sinks.split(",")
    print(f"{args.rows:,} rows; target {TARGET_ROWS:,} rows in ≤ {TARGET_S:g} s")
    print(f"{'format':14} {'bytes':>10} {'import s (runs)':>30} {'rows/s':>9} {'10k-row s':>10} {'/ target':>9} "
          f"{'re-import s':>12}")
    with tempfile.TemporaryDirectory() as tmp:
        for fmt, kind in [(f, k) for f in files for k in kinds]:
            content = files[fmt]
            runs = [one_run(ctx, content, f"ledger-{i}.{fmt}", args.rows, Path(tmp), kind) for i in range(args.runs)]
            med = statistics.median(r["import_s"] for r in runs)
            re_med = statistics.median(r["reimport_s"] for r in runs)
            per_10k = med * TARGET_ROWS / args.rows
            out["formats"][f"{fmt} {kind}"] = {
                                   "bytes": len(content), "import_s": [round(r["import_s"], 3) for r in runs],
                                   "median_s": round(med, 3), "rows_per_s": round(args.rows / med),
                                   "s_per_10k_rows": round(per_10k, 3), "ratio_to_target": round(per_10k / TARGET_S, 3),
                                   "reimport_median_s": round(re_med, 3)}
            shown = ", ".join(f"{r['import_s']:.2f}" for r in runs)
            print(f"{fmt + ' → ' + kind:14} {len(content):10,} {med:8.2f} ({shown}) {args.rows / med:9,.0f} "
                  f"{per_10k:10.2f} {per_10k / TARGET_S:9.2f} {re_med:12.2f}")
    print(common.machine())
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
