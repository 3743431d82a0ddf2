"""The jobs runner: APScheduler fires each job on its interval; the runner decides whether to run it.

Three guards make a job run once per deployment and window, whatever fires it:
- the lease (``lease.FileLease``): only its holder runs anything; the others stand by and take over
  on their next tick once the holder is gone;
- the window key: a run belongs to the window ``now // interval`` of the injected clock, and the
  last completed window of each job is kept in ``jobs-state.json`` beside the lock, so a restart (or
  APScheduler catching up a misfire) inside a window that already ran does nothing;
- APScheduler's ``coalesce`` and ``max_instances=1``: missed runs collapse into one, never overlap.
Job bodies are idempotent on top of that (dirty windows, one active alert per key), so even a run
repeated across a crash between "done" and "recorded" changes nothing.

Every run is logged with its window, duration and a one-line summary, and kept in ``runs`` (the last
few hundred) for tests and the health page.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from .lease import Lease

log = logging.getLogger("nongyun.jobs")
SHUTDOWN_JOIN_S = 10.0  # how long shutdown() waits for a running job before the process leaves it

Clock = Callable[[], int]  # UTC epoch ms
Outcome = Literal["ok", "failed", "standby", "done_already"]


@dataclass(frozen=True)
class Job:
    name: str
    every_s: int
    body: Callable[[int], str]  # now (ms) → a one-line summary for the log


@dataclass(frozen=True)
class Run:
    job: str
    window: int  # now // interval
    at: int  # clock time of the run
    outcome: Outcome
    duration_ms: float
    summary: str


class JobRunner:
    def __init__(self, jobs: list[Job], lease: Lease, state_path: Path, clock: Clock,
                 on_shutdown: list[Callable[[], None]] | None = None) -> None:
        self.jobs = {j.name: j for j in jobs}
        self.lease = lease
        self.state_path = state_path
        self.clock = clock
        self.runs: deque[Run] = deque(maxlen=500)
        self._on_shutdown = on_shutdown or []
        self._state_lock = threading.Lock()
        self._scheduler: Any = None

    # -- one run -----------------------------------------------------------------------------------

    def run(self, name: str) -> Run:
        """Run job ``name`` now if this runner holds the lease and its window has not run yet."""
        job = self.jobs[name]
        now = self.clock()
        window = now // (job.every_s * 1000)
        if not self.lease.acquire():
            return self._record(Run(name, window, now, "standby", 0.0, "another runner holds the lease"))
        if self._done(name) >= window:
            return self._record(Run(name, window, now, "done_already", 0.0, "this window already ran"))
        started = time.perf_counter()
        try:
            summary = job.body(now)
        except Exception as exc:  # a failing job must not stop the scheduler; the next window retries
            ms = (time.perf_counter() - started) * 1000
            log.exception("job %s (window %d) failed after %.1f ms", name, window, ms)
            return self._record(Run(name, window, now, "failed", ms, f"{type(exc).__name__}: {exc}"))
        ms = (time.perf_counter() - started) * 1000
        self._mark_done(name, window)
        log.info("job %s (window %d) ran in %.1f ms: %s", name, window, ms, summary)
        return self._record(Run(name, window, now, "ok", ms, summary))

    def _record(self, run: Run) -> Run:
        self.runs.append(run)
        if run.outcome in ("standby", "done_already"):
            log.debug("job %s (window %d): %s", run.job, run.window, run.summary)
        return run

    def _read_state(self) -> dict[str, int]:
        try:
            found = json.loads(self.state_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return {str(k): int(v) for k, v in found.items()} if isinstance(found, dict) else {}

    def _done(self, name: str) -> int:
        with self._state_lock:
            return self._read_state().get(name, -1)

    def _mark_done(self, name: str, window: int) -> None:
        """Atomically (write, then rename): a crash leaves the old state or the new, never half."""
        with self._state_lock:
            state = self._read_state()
            state[name] = max(window, state.get(name, -1))
            tmp = self.state_path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
            tmp.write_text(json.dumps(state, sort_keys=True), encoding="utf-8")
            tmp.replace(self.state_path)

    # -- scheduling --------------------------------------------------------------------------------

    def start(self) -> JobRunner:
        from apscheduler.schedulers.background import BackgroundScheduler
        from apscheduler.triggers.interval import IntervalTrigger

        aps = logging.getLogger("apscheduler")
        if aps.level == logging.NOTSET:  # our own line per run says more; keep APScheduler's warnings
            aps.setLevel(logging.WARNING)
        scheduler = BackgroundScheduler(timezone=UTC, daemon=True)
        first = datetime.now(UTC) + timedelta(seconds=1)
        for i, job in enumerate(self.jobs.values()):
            # Missed by more than half an interval (a suspended laptop, a long GC): skip, the next
            # window comes soon; coalesce so a backlog of missed runs fires once.
            scheduler.add_job(self.run, IntervalTrigger(seconds=job.every_s, timezone=UTC), args=[job.name],
                              id=job.name, name=job.name, coalesce=True, max_instances=1,
                              misfire_grace_time=max(1, job.every_s // 2),
                              next_run_time=first + timedelta(seconds=i))  # in order: rollups first
        scheduler.start()
        self._scheduler = scheduler
        log.info("jobs runner started: %s", ", ".join(f"{j.name} every {j.every_s}s" for j in self.jobs.values()))
        return self

    def shutdown(self) -> None:
        """Stop firing, wait for a running job, let another runner take over, close notifiers."""
        if self._scheduler is not None:
            # wait for a running job, but boundedly: a job stuck in the store must not hang SIGTERM
            scheduler = self._scheduler
            waiter = threading.Thread(target=scheduler.shutdown, kwargs={"wait": True},
                                      name="jobs-shutdown", daemon=True)
            waiter.start()
            waiter.join(SHUTDOWN_JOIN_S)
            if waiter.is_alive():
                log.error("jobs runner: a job is still running after %.0f s; leaving it", SHUTDOWN_JOIN_S)
            self._scheduler = None
        self.lease.release()
        for close in self._on_shutdown:
            try:
                close()
            except Exception:
                log.exception("jobs runner: error while closing")
