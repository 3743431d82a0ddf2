"""The jobs runner: once per deployment and window, take-over when the holder dies, station health."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from service.context import Context
from service.jobs import start_jobs
from service.jobs.config import StationHealth
from service.jobs.health import check
from service.jobs.lease import FileLease
from service.jobs.runner import JobRunner
from service.records import Batch, Reading, StatusChange
from service.store.base import InRegion
from service.store.sqlite import SqliteStore
from service.times import now_ms, parse_rfc3339
from tests.jobs_support import Clock, Recorder

MIN = 60_000
STATION, VILLAGE = "qh-st-101203-1", "211204101203"  # reports every 600 s
T0 = parse_rfc3339("2026-06-10T08:00:00+08:00")
DISTRICT = InRegion("district", "211204")
JOBS = ("rollups", "station_health", "alerts")


@pytest.fixture
def store(ctx: Context) -> Iterator[SqliteStore]:
    s = SqliteStore.from_settings(ctx.settings)
    yield s
    s.close()


def runner_for(ctx: Context, store: SqliteStore, clock: Any, start: bool = False) -> JobRunner:
    return start_jobs(ctx, store, clock=clock, publisher=Recorder(), start=start)


def test_two_runners_started_together_run_each_job_once(ctx: Context, store: SqliteStore) -> None:
    clock = Clock(T0)
    a, b = runner_for(ctx, store, clock), runner_for(ctx, store, clock)
    try:
        barrier = threading.Barrier(2)
        outcomes: dict[str, list[str]] = {name: [] for name in JOBS}

        def both(r: JobRunner) -> None:
            barrier.wait()
            for name in JOBS:
                outcomes[name].append(r.run(name).outcome)

        threads = [threading.Thread(target=both, args=(r,)) for r in (a, b)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for name in JOBS:
            assert sorted(outcomes[name]) == ["ok", "standby"], name
        holder, standby = (a, b) if a.lease.acquire() else (b, a)
        assert not standby.lease.acquire()
        # the holder stops: the standby takes over on its next tick (next window)
        holder.shutdown()
        clock.now += 5 * MIN
        assert [standby.run(name).outcome for name in JOBS] == ["ok", "ok", "ok"]
    finally:
        a.shutdown()
        b.shutdown()


def test_a_standby_takes_over_when_the_holder_dies(ctx: Context, store: SqliteStore, tmp_path: Path) -> None:
    lock = Path(ctx.settings.data_dir) / "jobs.lock"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, pathlib; from service.jobs.lease import FileLease; "
         f"lease = FileLease(pathlib.Path({str(lock)!r})); assert lease.acquire(); print('held', flush=True); "
         "sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parent.parent)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        standby = runner_for(ctx, store, Clock(T0))
        assert standby.run("rollups").outcome == "standby"
        holder.kill()  # kill -9: no clean-up, the kernel drops the lock
        holder.wait(timeout=10)
        assert standby.run("rollups").outcome == "ok"
        standby.shutdown()
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
        if holder.stdin:
            holder.stdin.close()
        if holder.stdout:
            holder.stdout.close()


def test_a_restart_does_not_run_a_window_twice(ctx: Context, store: SqliteStore,
                                               caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock(T0)
    first = runner_for(ctx, store, clock)
    with caplog.at_level(logging.INFO, logger="nongyun.jobs"):
        assert first.run("alerts").outcome == "ok"
    assert any("job alerts" in r.getMessage() and " ms: " in r.getMessage() for r in caplog.records)  # duration logged
    first.shutdown()
    clock.now += MIN  # same 5-minute window
    restarted = runner_for(ctx, store, clock)
    assert restarted.run("alerts").outcome == "done_already"
    clock.now += 5 * MIN
    assert restarted.run("alerts").outcome == "ok"
    restarted.shutdown()


def test_two_scheduled_runners_fire_each_job_once(ctx: Context, store: SqliteStore) -> None:
    """The real APScheduler in two runners: each job fires in both, runs in one."""
    a, b = runner_for(ctx, store, now_ms, start=True), runner_for(ctx, store, now_ms, start=True)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            fired = {name: [r for r in (*a.runs, *b.runs) if r.job == name] for name in JOBS}
            if all(len(runs) >= 2 for runs in fired.values()):
                break
            time.sleep(0.05)  # polling the scheduler's threads; nothing to wait on
        for name, runs in fired.items():
            assert sorted(r.outcome for r in runs) == ["ok", "standby"], (name, runs)
    finally:
        a.shutdown()
        b.shutdown()


def test_a_silent_station_goes_offline_and_comes_back(ctx: Context, store: SqliteStore) -> None:
    cfg = StationHealth(offline_after_intervals=3, battery_low_v=3.4, battery_clear_v=3.5)

    def offline() -> list[str]:
        return [a.device or "" for a in store.list_alerts(DISTRICT, active=True) if a.kind == "device_offline"]

    store.write(Batch(readings=[Reading(STATION, VILLAGE, T0, {"soil_moisture": 20.0})]))
    check(ctx, store, cfg, T0 + 30 * MIN)  # exactly 3 intervals: still online
    assert offline() == []
    check(ctx, store, cfg, T0 + 30 * MIN + 1)
    assert offline() == [STATION]
    check(ctx, store, cfg, T0 + 35 * MIN)  # no repeat
    assert len(store.list_alerts(DISTRICT)) == 1
    store.write(Batch(readings=[Reading(STATION, VILLAGE, T0 + 40 * MIN, {"soil_moisture": 21.0})]))
    check(ctx, store, cfg, T0 + 41 * MIN)
    assert offline() == []
    [alert] = store.list_alerts(DISTRICT)
    assert (alert.raised_at, alert.cleared_at) == (T0, T0 + 41 * MIN)
    # the last will says offline: offline at once, not three intervals later
    store.write(Batch(statuses=[StatusChange(STATION, T0 + 45 * MIN, False, VILLAGE)]))
    check(ctx, store, cfg, T0 + 46 * MIN)
    assert offline() == [STATION]
    store.write(Batch(statuses=[StatusChange(STATION, T0 + 50 * MIN, True, VILLAGE)],
                      readings=[Reading(STATION, VILLAGE, T0 + 50 * MIN, {"soil_moisture": 21.0})]))
    check(ctx, store, cfg, T0 + 51 * MIN)
    assert offline() == []
    # a station never heard of raises nothing
    assert all(a.device == STATION for a in store.list_alerts(DISTRICT))


def test_a_longer_offline_setting_waits_longer(ctx: Context, store: SqliteStore) -> None:
    cfg = StationHealth(offline_after_intervals=6, battery_low_v=3.4, battery_clear_v=3.5)
    store.write(Batch(readings=[Reading(STATION, VILLAGE, T0, {"soil_moisture": 20.0})]))
    check(ctx, store, cfg, T0 + 59 * MIN)
    assert store.list_alerts(DISTRICT) == []
    check(ctx, store, cfg, T0 + 61 * MIN)
    assert [a.kind for a in store.list_alerts(DISTRICT)] == ["device_offline"]


def test_low_battery_is_a_warning_with_hysteresis(ctx: Context, store: SqliteStore) -> None:
    cfg = StationHealth()

    def battery(ts: int, volts: float) -> list[bool]:
        store.write(Batch(readings=[Reading(STATION, VILLAGE, ts, {"battery": volts})]))
        check(ctx, store, cfg, ts + MIN)
        return [a.active for a in store.list_alerts(DISTRICT) if a.kind == "battery_low"]

    assert battery(T0, 3.6) == []
    assert battery(T0 + 10 * MIN, 3.3) == [True]
    assert battery(T0 + 20 * MIN, 3.45) == [True]  # above the low mark, below the clear mark
    assert battery(T0 + 30 * MIN, 3.35) == [True]  # no second alert
    assert battery(T0 + 40 * MIN, 3.55) == [False]
    [alert] = store.list_alerts(DISTRICT)
    assert alert.severity == "warning" and alert.value == 3.3


def test_the_lease_excludes_a_second_holder_in_the_same_process(tmp_path: Path) -> None:
    a, b = FileLease(tmp_path / "jobs.lock"), FileLease(tmp_path / "jobs.lock")
    assert a.acquire() and a.acquire()
    assert not b.acquire()
    a.release()
    assert b.acquire()
    b.release()
