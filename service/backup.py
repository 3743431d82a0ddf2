"""Backup and restore of a data folder: the embedded store, the accounts (with the devices' broker
credential hashes), the run-time registry changes and the web secret key, plus a manifest.

Why these mechanics: each SQLite file is copied with the backup API in one step, which reads one
snapshot under a read transaction (WAL lets ingest keep writing meanwhile), so a backup holds
exactly what was committed when its snapshot began, never half a batch. The manifest's counts are
read from the copies themselves, so they are the snapshot's counts, and ``restore`` checks them.
A backup from a newer schema is refused on restore, as the store refuses such a file at open.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .auth.store import ACCOUNT_STEPS
from .auth.store import FILENAME as ACCOUNTS_FILE
from .errors import NongyunError
from .store.sqlite import STORE_STEPS
from .store.sqlite_schema import check_not_newer

STORE_FILE = "nongyun.sqlite3"
REGISTRY_FILE = "registry.sqlite3"  # service.registry_changes.FILENAME: devices and plots added at run time
SECRET_FILE = "secret_key"  # service.web.auth.SECRET_FILE (not imported: it pulls in Flask)
MANIFEST = "manifest.json"
FORMAT = 1
# what the manifest counts in the store, table by table
COUNTED = ("readings", "yields", "device_status", "rejections", "rejection_counts", "counters", "alerts",
           "rollup_1h", "rollup_1d")

Progress = Callable[[str], None]


class BackupError(NongyunError):
    """A backup could not be made or restored; the message says what to do."""


def _copy_sqlite(src: Path, dest: Path) -> None:
    """One consistent snapshot of ``src`` into a new file ``dest`` (backup API, all pages in one step)."""
    source = sqlite3.connect(f"file:{src}?mode=ro", uri=True, timeout=30)
    target = sqlite3.connect(dest)
    try:
        source.backup(target, pages=-1)
        target.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
    finally:
        target.close()
        source.close()


def _version(path: Path) -> int:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])


def store_counts(path: Path) -> dict[str, int]:
    """Rows per table, plus the ingest counters' totals (received, accepted)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        out = {t: int(conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]) for t in COUNTED if t in tables}
        for name in ("received", "accepted"):
            row = conn.execute("SELECT COALESCE(SUM(value), 0) FROM counters WHERE name = ?", (name,)).fetchone()
            out["counter_" + name] = int(row[0])
        return out
    finally:
        conn.close()


def backup(data_dir: Path, out: Path, progress: Progress | None = None) -> dict[str, Any]:
    """Write a backup of ``data_dir`` into the empty or new folder ``out``; returns the manifest."""
    data_dir, out = Path(data_dir), Path(out)
    if out.exists() and any(out.iterdir()):
        raise BackupError(f"{out} is not empty: back up into a new folder")
    out.mkdir(parents=True, exist_ok=True)
    out.chmod(0o700)  # password hashes and the secret key
    manifest: dict[str, Any] = {"format": FORMAT, "created_ms": int(time.time() * 1000), "files": {}}
    for name, steps in ((STORE_FILE, STORE_STEPS), (ACCOUNTS_FILE, ACCOUNT_STEPS), (REGISTRY_FILE, [])):
        src = data_dir / name
        if not src.exists():
            continue
        _copy_sqlite(src, out / name)
        entry: dict[str, Any] = {"schema_version": _version(out / name), "schema_current": len(steps)}
        if name == STORE_FILE:
            entry["counts"] = store_counts(out / name)
        elif name == ACCOUNTS_FILE:
            with sqlite3.connect(out / name) as conn:
                entry["counts"] = {t: int(conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0])
                                   for t in ("users", "tokens", "device_credentials")}
        manifest["files"][name] = entry
        if progress:
            progress(name)
    if (data_dir / SECRET_FILE).exists():
        shutil.copy2(data_dir / SECRET_FILE, out / SECRET_FILE)
        manifest["files"][SECRET_FILE] = {}
        if progress:
            progress(SECRET_FILE)
    if not manifest["files"]:
        raise BackupError(f"nothing to back up in {data_dir}")
    for name in manifest["files"]:
        (out / name).chmod(0o600)
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return manifest


def read_manifest(src: Path) -> dict[str, Any]:
    try:
        manifest: dict[str, Any] = json.loads((Path(src) / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        raise BackupError(f"{src}: no readable {MANIFEST}: is this a nongyun backup? ({exc})") from exc
    if manifest.get("format") != FORMAT or not isinstance(manifest.get("files"), dict):
        raise BackupError(f"{src}/{MANIFEST}: unknown format {manifest.get('format')!r}")
    return manifest


def restore(src: Path, data_dir: Path, force: bool = False, progress: Progress | None = None) -> dict[str, Any]:
    """Put a backup into ``data_dir``: checked against its manifest, refused if newer than us."""
    src, data_dir = Path(src), Path(data_dir)
    manifest = read_manifest(src)
    steps = {STORE_FILE: STORE_STEPS, ACCOUNTS_FILE: ACCOUNT_STEPS}
    for name, entry in manifest["files"].items():
        if name not in (*steps, REGISTRY_FILE, SECRET_FILE) or not (src / name).is_file():
            raise BackupError(f"{src}: {name} is listed in the manifest but missing or unknown")
        if name in steps:
            found = _version(src / name)
            if found != entry.get("schema_version"):
                raise BackupError(f"{src}/{name}: schema version {found}, the manifest says "
                                  f"{entry.get('schema_version')}")
            check_not_newer(src / name, found, steps[name])
        if name == STORE_FILE and store_counts(src / name) != entry.get("counts"):
            raise BackupError(f"{src}/{name}: its counts differ from the manifest's: the copy is damaged")
    if data_dir.exists() and any(data_dir.iterdir()) and not force:
        raise BackupError(f"{data_dir} is not empty: stop every nongyun process and use --force to replace it")
    data_dir.mkdir(parents=True, exist_ok=True)
    for name in manifest["files"]:
        for stale in (data_dir / (name + "-wal"), data_dir / (name + "-shm")):
            stale.unlink(missing_ok=True)
        tmp = data_dir / (name + ".restoring")
        shutil.copy2(src / name, tmp)
        tmp.replace(data_dir / name)
        (data_dir / name).chmod(0o600)
        if progress:
            progress(name)
    return manifest
