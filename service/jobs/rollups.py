"""The rollups job: fold the windows that new (or late) data touched into the hourly/daily rollups."""

from __future__ import annotations

import time

from ..store.base import JobsStore

CHUNK = 500  # (metric, hour) windows per store transaction: short enough not to stall ingest
BUDGET_S = 30.0  # a run stops after this long; the rest waits for the next run, oldest first


def refresh(store: JobsStore, budget_s: float = BUDGET_S) -> str:
    deadline = time.monotonic() + budget_s
    done = 0
    while True:
        progress = store.refresh_rollups(CHUNK)
        done += progress.windows
        if progress.remaining == 0 or progress.windows == 0 or time.monotonic() > deadline:
            return f"rolled up {done} windows, {progress.remaining} waiting"
