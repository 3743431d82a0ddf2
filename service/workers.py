"""Worker ids that stay the same across restarts: the store keeps counters per worker id.

An ingest worker is its MQTT client id. A web process that stores records entered by staff needs an
id of its own too (the InfluxDB backend keeps cumulative counters per worker, so two live processes
must never share one), yet an id from the PID added a counter series and a metrics label with
every restart. A web process therefore takes the lowest free numbered slot, held by an exclusive
lock on a file in the shared data folder for as long as the process lives: ``web-api-1``,
``web-api-2``... A restarted process finds its old slot free again.
"""

from __future__ import annotations

import fcntl
import os
import threading
from pathlib import Path
from typing import IO

API_WORKER_PREFIX = "web-api"
MAX_SLOTS = 256
_held: dict[str, tuple[str, IO[str]]] = {}
_lock = threading.Lock()


def is_api_worker(worker: str) -> bool:
    """Staff entries are not ingest: they must not count toward the ingest lag."""
    return worker.startswith(API_WORKER_PREFIX)


def api_worker(data_dir: Path) -> str:
    """This process's web worker id for ``data_dir``, taken once and held until the process ends."""
    key = str(Path(data_dir).resolve())
    with _lock:
        if key in _held and _held[key][1].closed is False:
            return _held[key][0]
        folder = Path(data_dir) / "workers"
        folder.mkdir(parents=True, exist_ok=True)
        for slot in range(1, MAX_SLOTS + 1):
            name = f"{API_WORKER_PREFIX}-{slot}"
            f = (folder / f"{name}.lock").open("a+", encoding="utf-8")
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                f.close()
                continue
            f.seek(0)
            f.truncate()
            f.write(f"{os.getpid()}\n")  # for operators: which process holds the slot
            f.flush()
            _held[key] = (name, f)
            return name
        raise RuntimeError(f"more than {MAX_SLOTS} web processes share {folder}")
