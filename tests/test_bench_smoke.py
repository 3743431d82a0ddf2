"""A tiny run of each benchmark script, exactly as bench/README.md runs them, so they never rot.

The figures of a tiny run mean nothing; what is checked is that every mode runs end to end and
that its own correctness checks (nothing lost, each message stored once) passed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent


def run(script: str, *args: str, out: Path, timeout: float = 240) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, f"bench/{script}", *args, "--json", str(out)], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert "cores; load" in proc.stdout  # every report names the machine and its load
    result: dict[str, Any] = json.loads(out.read_text())
    return result


def test_ingest_drain_runs_and_checks_what_it_stored(tmp_path: Path) -> None:
    r = run("ingest_drain.py", "--modes", "drain", "--runs", "1", "--messages", "400", out=tmp_path / "r.json")
    assert r["drain"]["bare_msg_s"] > 0 and r["drain"]["ingest_msg_s"] > 0
    assert r["drain"]["ratio"] == pytest.approx(r["drain"]["ingest_msg_s"] / r["drain"]["bare_msg_s"])


@pytest.mark.slow
def test_ingest_shared_live_and_memory_modes_run(tmp_path: Path) -> None:
    r = run("ingest_drain.py", "--modes", "shared,live,memory", "--runs", "1", "--messages", "400",
            "--memory-messages", "400", out=tmp_path / "r.json")
    assert r["shared"]["ingest_msg_s"] > 0 and r["live"]["ingest_msg_s"] > 0
    assert 20 < r["memory"]["peak_rss_mib"] < 1000


def test_query_bench_times_every_dashboard_call_raw_and_rolled_up(tmp_path: Path) -> None:
    r = run("query.py", "--days", "1", "--reps", "2", out=tmp_path / "q.json")
    assert set(r["results"]) == {"1 d raw", "1 d rollup"}
    for plan in r["results"].values():
        assert {"district yields", "township readings 7 d hourly", "village readings 90 d daily",
                "latest per device (township)"} <= set(plan)
        assert all(c["p50"] <= c["p95"] <= c["max"] for k, c in plan.items() if k != "peak_rss_mib")
    assert r["generated"]["1d"]["values"] > 1000


def test_points_read_counts_what_storage_hands_over_per_dashboard_call(tmp_path: Path) -> None:
    r = run("points_read.py", "--days", "1", out=tmp_path / "p.json", timeout=300)
    calls = r["calls"]
    assert calls["devices (district)"]["read"] <= 10 * r["stations"]  # one point per series, not the history
    assert calls["health (counters)"]["read"] <= 10
    assert all(c["read"] <= c["in_range"] for c in calls.values())


def test_import_bench_stores_every_row_once_in_both_formats(tmp_path: Path) -> None:
    r = run("import_yields.py", "--rows", "300", "--runs", "1", out=tmp_path / "i.json")
    assert set(r["formats"]) == {"xlsx records", "xlsx points", "csv records", "csv points"}
    for f in r["formats"].values():  # the script itself fails unless 300 were stored, then none added again
        assert f["rows_per_s"] > 0 and f["ratio_to_target"] == pytest.approx(f["s_per_10k_rows"] / 10, abs=1e-3)
