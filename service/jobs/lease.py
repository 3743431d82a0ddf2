"""Who runs the jobs: an exclusive lock on a file in the data folder, held while the runner lives.

Why a lock rather than a lease row with an expiry: the kernel drops a ``flock`` the moment its holder
dies (crash, kill -9, OOM), so a standby runner takes over on its next tick without waiting for an
expiry, and no clock skew can let two holders overlap. ``flock`` locks belong to an open file
description, so two runners in one process exclude each other as two processes do. Every process of
a deployment that shares the data folder (``serve``, ``jobs``, gunicorn workers never start jobs)
competes for the same file; a deployment spread over machines runs one ``nongyun jobs``, or puts
the data folder on storage with working locks.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from pathlib import Path
from typing import IO, Protocol

log = logging.getLogger(__name__)


class Lease(Protocol):
    def acquire(self) -> bool:
        """True when this runner holds the lease (now or already); never blocks."""

    def release(self) -> None:
        """Let another runner take over."""


class FileLease:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[str] | None = None
        self._lock = threading.Lock()

    @property
    def held(self) -> bool:
        return self._file is not None

    def acquire(self) -> bool:
        with self._lock:
            if self._file is not None:
                return True
            self.path.parent.mkdir(parents=True, exist_ok=True)
            f = self.path.open("a+", encoding="utf-8")
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                f.close()
                return False
            f.seek(0)
            f.truncate()
            f.write(f"{os.getpid()}\n")  # for operators: who runs the jobs
            f.flush()
            self._file = f
            log.info("jobs lease taken (%s, pid %d)", self.path, os.getpid())
            return True

    def release(self) -> None:
        with self._lock:
            if self._file is None:
                return
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None
