"""Schema versions of our SQLite files (``PRAGMA user_version``) and the ordered steps between them.

Why: ``CREATE TABLE IF NOT EXISTS`` cannot change a table, and ad-hoc "is this column there?"
checks pile up; a number in the file's header says exactly which steps it has had, and a file
from a newer release is refused instead of being half-understood.

- A schema is a list of ``Step``; step *n* (1-based) takes a file from version n-1 to n. Step 1 is
  the schema as it was before versions existed, so a file with our tables but ``user_version`` 0
  is recognised as version 1 (its step 1 is re-run: every statement of it is idempotent).
- ``upgrade`` runs the missing steps at open, all in one ``BEGIN IMMEDIATE`` transaction with the
  version set at its end, so a crash leaves the old version and several processes opening one file
  wait for each other (the version is read again under the lock).
- To add a migration, **append** a ``Step`` to the list (``STORE_STEPS`` in ``sqlite.py``,
  ``ACCOUNT_STEPS`` in ``auth/store.py``); never edit or reorder a released one. A step is SQL
  statements (no ``executescript``: it would commit the transaction) and/or a Python function.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import NongyunError
from .sqlite_tx import immediate


class SchemaTooNew(NongyunError):
    """The file was written by a newer nongyun: refuse it rather than guess its tables."""


@dataclass(frozen=True)
class Step:
    """One migration: ``sql`` statements (separated by ``;``), then ``run`` if given."""

    describe: str
    sql: str = ""
    run: Callable[[sqlite3.Connection], None] | None = None


def statements(script: str) -> list[str]:
    """A script's statements, split where SQLite says one is complete (``;`` in comments is fine)."""
    out: list[str] = []
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n;"):
                out.append(pending.strip())
            pending = ""
    return out


def version_of(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def check_not_newer(path: Path | str, found: int, steps: Sequence[Step]) -> None:
    if found > len(steps):
        raise SchemaTooNew(f"{path}: schema version {found} is newer than this nongyun's ({len(steps)}); "
                           "upgrade nongyun, or restore a backup made by this version")


def upgrade(conn: sqlite3.Connection, path: Path | str, steps: Sequence[Step]) -> int:
    """Bring the file to ``len(steps)``; returns the version found (0: new or unversioned)."""
    found = version_of(conn)
    check_not_newer(path, found, steps)
    if found == len(steps):
        return found  # the usual case: no write lock taken by every process that opens the file
    with immediate(conn):
        found = version_of(conn)  # another process may have upgraded it meanwhile
        check_not_newer(path, found, steps)
        start = max(found, 1) - 1  # 0 (new or unversioned) re-runs step 1, which is idempotent
        for step in steps[start:]:
            for stmt in statements(step.sql):
                conn.execute(stmt)
            if step.run is not None:
                step.run(conn)
        conn.execute(f"PRAGMA user_version = {len(steps)}")
    return found
