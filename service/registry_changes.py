"""Registries that change without restarts: devices and plots added, moved or retired at run time.

Why this shape: config/devices.yaml and config/plots.yaml stay the county's baseline (a county swaps
them, a review reads them); run-time changes are an append-only log, ``registry_changes`` in
``{data_dir}/registry.sqlite3`` (who, when, what), and each process's registry is baseline + log.
Every process (ingest workers, web workers, the jobs runner, on one host or several sharing
data_dir, as the accounts file already is) polls ``max(id)`` of that table every ``poll_s``
seconds: one indexed read, no file watching, nothing to signal. When it moved, the process
replays the log over the baseline and swaps the new value objects in whole (one assignment each),
so a reader sees the old or the new registry, never half of one; the ingest's per-message lookup
stays a dict read with no I/O.

Replay is lenient, the commands are strict: ``nongyun devices|plots add|move|retire`` refuse an
unknown village, a duplicate id or an unknown device with one line; a logged change that no longer
applies (its village left the region file) is skipped with a warning, never stopping a process.
A moved device's stored history keeps the village it was measured in (every point carries it);
only points after the move (and the device lists) use the new one.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import BadInput, SettingsError, StoreUnavailable
from .land import Land
from .regions import RegionTree
from .registry import Registry

log = logging.getLogger(__name__)
FILENAME = "registry.sqlite3"
POLL_S = float(os.environ.get("NONGYUN_REGISTRY_POLL_S", "10"))  # well inside the minute promised
TARGETS = ("device", "plot")
OPS = ("add", "move", "retire")

SCHEMA = """
CREATE TABLE IF NOT EXISTS registry_changes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms INTEGER NOT NULL,
    by TEXT NOT NULL,
    target TEXT NOT NULL CHECK (target IN ('device', 'plot')),
    op TEXT NOT NULL CHECK (op IN ('add', 'move', 'retire')),
    entity TEXT NOT NULL,
    body TEXT NOT NULL  -- JSON: the whole entry for add, {"village": ...} for move, {} for retire
);
"""


@dataclass(frozen=True)
class Change:
    id: int
    at_ms: int
    by: str
    target: str
    op: str
    entity: str
    body: dict[str, Any]


class ChangeLog:
    """The append-only table; a connection per call, so any thread and any process may use it."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def in_dir(cls, data_dir: Path) -> ChangeLog:
        return cls(Path(data_dir) / FILENAME)

    def _connect(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=10)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise StoreUnavailable(f"{self.path}: {exc}") from exc
        return conn

    def head(self) -> int:
        """The newest change's id (0: none); the cheap poll. A missing file is no change."""
        if not self.path.exists():
            return 0
        conn = self._connect()
        try:
            return int(conn.execute("SELECT coalesce(max(id), 0) FROM registry_changes").fetchone()[0])
        finally:
            conn.close()

    def changes(self) -> list[Change]:
        if not self.path.exists():
            return []
        conn = self._connect()
        try:
            rows = conn.execute("SELECT id, at_ms, by, target, op, entity, body FROM registry_changes ORDER BY id")
            return [Change(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6])) for r in rows]
        finally:
            conn.close()

    def append(self, at_ms: int, by: str, target: str, op: str, entity: str, body: Mapping[str, Any]) -> int:
        conn = self._connect()
        try:
            with conn:
                cur = conn.execute("INSERT INTO registry_changes (at_ms, by, target, op, entity, body) "
                                   "VALUES (?, ?, ?, ?, ?, ?)", (at_ms, by, target, op, entity,
                                                                 json.dumps(dict(body), ensure_ascii=False)))
            return int(cur.lastrowid or 0)
        finally:
            conn.close()


def _apply(entries: dict[str, dict[str, Any]], change: Change) -> None:
    if change.op == "add":
        entries[change.entity] = dict(change.body, id=change.entity)
    elif change.entity in entries:
        if change.op == "move":
            entries[change.entity] = dict(entries[change.entity], village=change.body["village"])
        else:
            del entries[change.entity]


class LiveRegistries:
    """The current device registry and land of one process: baseline + the change log, polled.

    ``devices`` and ``land`` are plain attributes (no I/O to read them); ``refresh()`` replays the
    log when its head moved and tells the subscribers (the Context, payload decoders)."""

    def __init__(self, log_: ChangeLog, tree: RegionTree, metrics: set[str], devices: Registry, land: Land) -> None:
        self.log = log_
        self.tree = tree
        self.metrics = metrics
        self.baseline_devices = devices
        self.baseline_land = land
        self.devices = devices
        self.land = land
        self.head = 0
        self._subscribers: list[Callable[[Registry, Land], None]] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._skipped: set[int] = set()

    def subscribe(self, fn: Callable[[Registry, Land], None]) -> None:
        self._subscribers.append(fn)

    def follow(self, decoder: Any) -> None:
        """Keep a PayloadDecoder's ``registry`` and ``land`` current (it holds its own references)."""
        def swap(devices: Registry, land: Land) -> None:
            decoder.registry, decoder.land = devices, land

        self.subscribe(swap)

    def refresh(self) -> bool:
        """Replay the log if it changed since the last look; True when new registries were swapped in."""
        with self._lock:
            head = self.log.head()
            if head == self.head:
                return False
            devices, land = self._replay(self.log.changes())
            self.devices, self.land, self.head = devices, land, head
            for fn in self._subscribers:  # under the lock: two refreshes never hand out old after new
                fn(devices, land)
        log.info("registry changes up to #%d in force: %d devices, %d plots", head, len(devices), len(land))
        return True

    def _replay(self, changes: list[Change]) -> tuple[Registry, Land]:
        devices = {str(e["id"]): e for e in self.baseline_devices.entries()}
        plots = {p.id: _plot_entry(p) for p in self.baseline_land}
        groups = [{"id": g.id, "name": g.name, "kind": g.kind} for g in self.baseline_land.groups()]
        for c in changes:
            target = devices if c.target == "device" else plots
            trial = dict(target)
            _apply(trial, c)
            try:
                if c.target == "device":
                    Registry.from_entries(trial.values(), self.tree, self.metrics, "registry change")
                else:
                    Land.from_entries(groups, trial.values(), self.tree, plots_source="registry change")
            except SettingsError as exc:
                if c.id not in self._skipped:
                    self._skipped.add(c.id)
                    log.warning("registry change #%d (%s %s %s) skipped: %s", c.id, c.op, c.target, c.entity, exc)
                continue
            target.clear()
            target.update(trial)
        return (Registry.from_entries(devices.values(), self.tree, self.metrics, "registry change"),
                Land.from_entries(groups, plots.values(), self.tree, plots_source="registry change"))

    def start(self, poll_s: float = POLL_S) -> None:
        """Poll in a daemon thread (idempotent): every process that serves calls this once."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, args=(poll_s,), name="registry-poll", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self, poll_s: float) -> None:
        while not self._stop.wait(poll_s):
            try:
                self.refresh()
            except Exception:  # a locked or vanished file: keep the registry in force, try again
                log.warning("registry changes: cannot read %s; keeping the registry in force", self.log.path,
                            exc_info=True)

    # -- the changes themselves (the CLI and the admin page): strict, one-line refusals ----------

    def _village(self, village: str) -> str:
        node = self.tree.find(village)
        if node is None or node.level != "village":
            raise BadInput(f"unknown village {village[:20]!r}: not a village in the region tree", "village")
        return village

    def _record(self, at_ms: int, by: str, target: str, op: str, entity: str, body: Mapping[str, Any]) -> None:
        self.log.append(at_ms, by, target, op, entity, body)
        self.refresh()

    def add_device(self, entry: Mapping[str, Any], by: str, at_ms: int) -> None:
        self.refresh()
        dev_id = str(entry.get("id", ""))
        found = self.devices.find(dev_id)
        if found is not None:
            raise BadInput(f"duplicate id: device {dev_id!r} exists already (village {found.village})", "id")
        self._village(str(entry.get("village", "")))
        try:
            Registry.from_entries([entry], self.tree, self.metrics, "devices add")
        except SettingsError as exc:
            raise BadInput(str(exc).split(": ", 2)[-1]) from None
        self._record(at_ms, by, "device", "add", dev_id, {k: v for k, v in entry.items() if k != "id"})

    def move_device(self, dev_id: str, village: str, by: str, at_ms: int) -> str:
        """Returns the village it left."""
        self.refresh()
        found = self.devices.find(dev_id)
        return self._move("device", dev_id, None if found is None else found.village, village, by, at_ms)

    def retire_device(self, dev_id: str, by: str, at_ms: int) -> None:
        self.refresh()
        if self.devices.find(dev_id) is None:
            raise BadInput(f"unknown device {dev_id!r}: nothing to retire", "id")
        self._record(at_ms, by, "device", "retire", dev_id, {})

    def add_plot(self, entry: Mapping[str, Any], by: str, at_ms: int) -> None:
        self.refresh()
        plot_id = str(entry.get("id", ""))
        found = self.land.plot(plot_id)
        if found is not None:
            raise BadInput(f"duplicate id: plot {plot_id!r} exists already (village {found.village})", "id")
        self._village(str(entry.get("village", "")))
        groups = [{"id": g.id, "name": g.name, "kind": g.kind} for g in self.land.groups()]
        try:
            Land.from_entries(groups, [entry], self.tree, plots_source="plots add")
        except SettingsError as exc:
            raise BadInput(str(exc).split(": ", 2)[-1]) from None
        self._record(at_ms, by, "plot", "add", plot_id, {k: v for k, v in entry.items() if k != "id"})

    def move_plot(self, plot_id: str, village: str, by: str, at_ms: int) -> str:
        self.refresh()
        found = self.land.plot(plot_id)
        return self._move("plot", plot_id, None if found is None else found.village, village, by, at_ms)

    def _move(self, kind: str, item_id: str, was: str | None, village: str, by: str, at_ms: int) -> str:
        """One rule for devices and plots: the item exists, the village is real and another one."""
        if was is None:
            raise BadInput(f"unknown {kind} {item_id!r}", "id")
        self._village(village)
        if was == village:
            raise BadInput(f"{kind} {item_id!r} is in village {village} already", "village")
        self._record(at_ms, by, kind, "move", item_id, {"village": village})
        return was

    def retire_plot(self, plot_id: str, by: str, at_ms: int) -> None:
        self.refresh()
        if self.land.plot(plot_id) is None:
            raise BadInput(f"unknown plot {plot_id!r}: nothing to retire", "id")
        self._record(at_ms, by, "plot", "retire", plot_id, {})


def new_device_credential(data_dir: Path, device: str, now: int) -> str:
    """A broker password for a device added at run time: returned once, kept only as its Mosquitto
    hash in the account store, where ``nongyun broker-config`` finds it for the broker's files."""
    import secrets

    from .auth.store import SqliteAccounts
    from .broker_config import mosquitto_hash

    password = secrets.token_urlsafe(18)
    SqliteAccounts.in_dir(data_dir).set_device_credential(device, mosquitto_hash(password), now)
    return password


def _plot_entry(p: Any) -> dict[str, Any]:
    return {"id": p.id, "village": p.village, "area_ha": p.area_ha, "name": p.name, "groups": list(p.groups)}
