"""Web worker ids survive restarts and never collide between live processes (service/workers.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HOLD = ("import sys, time; from pathlib import Path; from service.workers import api_worker; "
        "print(api_worker(Path(sys.argv[1])), flush=True); time.sleep(float(sys.argv[2]))")


def _start(data: Path, hold_s: float) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(data), str(hold_s)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def test_live_processes_get_distinct_ids_and_a_restart_gets_its_slot_back(tmp_path: Path) -> None:
    first, first_id = _start(tmp_path, 30)
    second, second_id = _start(tmp_path, 30)
    try:
        assert (first_id, second_id) == ("web-api-1", "web-api-2")
        first.kill()
        first.wait(timeout=10)
        third, third_id = _start(tmp_path, 0)
        third.communicate(timeout=10)
        assert third_id == "web-api-1"  # the restarted process takes the freed slot: no new counter series
    finally:
        for proc in (first, second):
            proc.kill()
            proc.communicate(timeout=10)
