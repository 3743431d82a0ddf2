"""One SQLite write transaction, the way every file of ours takes it.

``BEGIN IMMEDIATE`` takes the file's write lock up front, so a second process waits (busy timeout)
instead of failing half-way when a read lock cannot be upgraded; anything raised inside — a
KeyboardInterrupt too — rolls back, and only a clean exit commits.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def immediate(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
