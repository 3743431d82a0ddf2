"""The robots' outbox: a small SQLite file in the data folder, drained by one worker thread.

Why a file and a thread: a group robot may be slow (a time-out), rate-limited (WeCom allows 20
messages a minute) or down for an hour, and none of that may hold up the jobs runner, whose alert
run only has to *put* a message here (one local insert). The worker sends what is due, retries with
doubling back-off up to ``attempts``, and then keeps the message as a dead letter with its last
error, where ``/api/v1/health`` counts it. Because the queue is a file, a restart neither loses
queued messages nor forgets its dead letters, and a web process on the same data folder can read
the counts. Each message has a key (alert id + version + channel, or brief + week + channel):
putting it again is a no-op, so a job re-run or a crash between "queued" and "marked delivered in
the store" never sends twice. The queue is bounded: past ``queue_max`` waiting messages a new one is
a dead letter at once ("outbox full"), never a blocked runner.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..store.sqlite_tx import immediate
from .robots import Answer

log = logging.getLogger("nongyun.notify")
FILE = "notify-outbox.sqlite"
CLAIM_MS = 600_000  # a message taken by a worker that died is taken again after this (> a batch's time-outs)
KEEP_SENT_MS = 14 * 86_400_000  # sent messages are kept this long, so a re-put of the same key stays a no-op
IDLE_WAIT_S = 30.0

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, channel TEXT NOT NULL, body BLOB NOT NULL,
    state TEXT NOT NULL DEFAULT 'queued', attempts INTEGER NOT NULL DEFAULT 0, next_at INTEGER NOT NULL,
    claimed_until INTEGER NOT NULL DEFAULT 0, created INTEGER NOT NULL, done_at INTEGER, last_error TEXT
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (state, next_at);
CREATE TABLE IF NOT EXISTS channel_errors (channel TEXT PRIMARY KEY, at INTEGER NOT NULL, error TEXT NOT NULL);
"""

Sender = Callable[[bytes], Answer]  # one attempt at one channel


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class Policy:
    attempts: int = 5
    backoff_s: float = 5.0
    backoff_max_s: float = 300.0
    queue_max: int = 10_000

    def delay_ms(self, attempts_made: int) -> int:
        return int(min(self.backoff_max_s, self.backoff_s * 2 ** (attempts_made - 1)) * 1000)


@dataclass(frozen=True)
class Pending:
    id: int
    key: str
    channel: str
    body: bytes
    attempts: int


@dataclass(frozen=True)
class ChannelStats:
    queued: int = 0
    sent: int = 0
    dead_letters: int = 0
    retries: int = 0  # attempts beyond the first, over every message still kept
    last_error: str | None = None
    last_error_at: int | None = None


class Outbox:
    """Times here are the wall clock's (``clock``), not the jobs runner's window clock: back-off is real time."""

    def __init__(self, path: Path, policy: Policy = Policy(), clock: Callable[[], int] = wall_ms) -> None:
        self.path = path
        self.policy = policy
        self.clock = clock
        self._local = threading.local()
        self._lock = threading.Lock()
        self._open: list[sqlite3.Connection] = []
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=10)
        try:
            conn.execute("PRAGMA journal_mode=WAL")  # the web's reads never wait for the worker's writes
            conn.executescript(SCHEMA)
        finally:
            conn.close()

    @classmethod
    def in_dir(cls, data_dir: Path, policy: Policy = Policy()) -> Outbox:
        return cls(Path(data_dir) / FILE, policy)

    @contextmanager
    def _conn(self) -> Iterator[sqlite3.Connection]:
        """One transaction on this thread's own connection (the runner's thread puts, the worker takes).
        Connections stay open: closing the last one of a WAL file checkpoints it, ~16 ms a call."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=10, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA synchronous=NORMAL")  # WAL: a power cut may lose the last put, never corrupt
            self._local.conn = conn
            with self._lock:
                self._open.append(conn)
        with immediate(conn):
            yield conn

    def close(self) -> None:
        with self._lock:
            conns, self._open = self._open, []
        for conn in conns:
            conn.close()
        self._local = threading.local()

    def put(self, key: str, channel: str, body: bytes) -> bool:
        """Queue ``body`` for ``channel`` once per ``key``, due at once; True when it is new."""
        now = self.clock()
        with self._conn() as conn:
            if conn.execute("SELECT 1 FROM outbox WHERE key = ?", (key,)).fetchone():
                return False
            (waiting,) = conn.execute("SELECT COUNT(*) FROM outbox WHERE state = 'queued'").fetchone()
            full = waiting >= self.policy.queue_max
            conn.execute("INSERT INTO outbox (key, channel, body, state, next_at, created, done_at, last_error) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                         (key, channel, body, "dead" if full else "queued", now, now, now if full else None,
                          "outbox full" if full else None))
            if full:
                self._error(conn, channel, now, "outbox full")
        if full:
            log.error("notify: outbox full (%d waiting); %s to %s is a dead letter", waiting, key, channel)
        return True

    def take(self, now: int, limit: int = 10) -> list[Pending]:
        """Claim up to ``limit`` due messages for ``CLAIM_MS``, oldest first."""
        with self._conn() as conn:
            rows = conn.execute("SELECT id, key, channel, body, attempts FROM outbox WHERE state = 'queued' "
                                "AND next_at <= ? AND claimed_until <= ? ORDER BY next_at, id LIMIT ?",
                                (now, now, limit)).fetchall()
            conn.executemany("UPDATE outbox SET claimed_until = ? WHERE id = ?", [(now + CLAIM_MS, r[0]) for r in rows])
        return [Pending(int(r[0]), r[1], r[2], bytes(r[3]), int(r[4])) for r in rows]

    def settle(self, p: Pending, answer: Answer, now: int) -> str:
        """Record one attempt's answer: sent, retry later, or dead; what became of it."""
        made = p.attempts + 1
        with self._conn() as conn:
            if answer.ok:
                conn.execute("UPDATE outbox SET state = 'sent', attempts = ?, done_at = ?, claimed_until = 0 "
                             "WHERE id = ?", (made, now, p.id))
                return "sent"
            self._error(conn, p.channel, now, answer.error)
            if answer.retry and made < self.policy.attempts:
                conn.execute("UPDATE outbox SET attempts = ?, next_at = ?, claimed_until = 0, last_error = ? "
                             "WHERE id = ?", (made, now + self.policy.delay_ms(made), answer.error, p.id))
                return "retry"
            conn.execute("UPDATE outbox SET state = 'dead', attempts = ?, done_at = ?, claimed_until = 0, "
                         "last_error = ? WHERE id = ?", (made, now, answer.error, p.id))
            return "dead"

    @staticmethod
    def _error(conn: sqlite3.Connection, channel: str, now: int, error: str) -> None:
        conn.execute("INSERT INTO channel_errors (channel, at, error) VALUES (?, ?, ?) ON CONFLICT (channel) "
                     "DO UPDATE SET at = excluded.at, error = excluded.error", (channel, now, error))

    def next_due(self) -> int | None:
        with self._conn() as conn:
            (due,) = conn.execute("SELECT MIN(MAX(next_at, claimed_until)) FROM outbox "
                                  "WHERE state = 'queued'").fetchone()
        return int(due) if due is not None else None

    def prune(self, now: int) -> int:
        with self._conn() as conn:
            return conn.execute("DELETE FROM outbox WHERE state = 'sent' AND done_at < ?",
                                (now - KEEP_SENT_MS,)).rowcount

    def stats(self) -> dict[str, ChannelStats]:
        return read_stats(self.path)


def read_stats(path: Path) -> dict[str, ChannelStats]:
    """Per channel: waiting, sent, dead letters, retries and the last error; {} when nothing was ever
    queued here. Read-only, for health (``queries/health.py``): it never creates the file."""
    if not path.exists():
        return {}
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    except sqlite3.Error:
        return {}
    try:
        counts = conn.execute("SELECT channel, SUM(state = 'queued'), SUM(state = 'sent'), SUM(state = 'dead'), "
                              "SUM(MAX(attempts - 1, 0)) FROM outbox GROUP BY channel").fetchall()
        errors = {c: (err, at) for c, at, err in conn.execute("SELECT channel, at, error FROM channel_errors")}
    except sqlite3.Error:
        return {}
    finally:
        conn.close()
    found = {c: ChannelStats(int(q), int(s), int(d), int(r), *errors.get(c, (None, None)))
             for c, q, s, d, r in counts}
    for c, (err, at) in errors.items():
        found.setdefault(c, ChannelStats(last_error=err, last_error_at=at))
    return found


class Dispatcher:
    """The worker thread that drains the outbox; started by the first ``kick`` (the lease holder's
    first delivery), so standby runners never send."""

    def __init__(self, outbox: Outbox, senders: dict[str, Sender]) -> None:
        self.outbox = outbox
        self.senders = senders
        self.clock = outbox.clock
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._busy = threading.Lock()
        self._thread: threading.Thread | None = None

    def kick(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="notify-outbox", daemon=True)
            self._thread.start()
        self._wake.set()

    def drain_once(self) -> int:
        """Send every message due now, once; how many were attempted."""
        with self._busy:
            now = self.clock()
            batch = self.outbox.take(now)
            for p in batch:
                send = self.senders.get(p.channel)
                answer = send(p.body) if send else Answer(False, False, "channel no longer configured")
                became = self.outbox.settle(p, answer, self.clock())
                if became == "sent":
                    log.info("notify: %s delivered to %s", p.key, p.channel)
                else:
                    log.warning("notify: %s to %s failed (attempt %d): %s%s", p.key, p.channel, p.attempts + 1,
                                answer.error, "; kept as a dead letter" if became == "dead" else "; retried later")
            if batch:
                self.outbox.prune(now)
            return len(batch)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                if self.drain_once():
                    continue
                due = self.outbox.next_due()
            except Exception:  # a locked or broken file: log, wait, try again; never let the thread die
                log.exception("notify: outbox error")
                due = None
            wait = IDLE_WAIT_S if due is None else max(0.0, min(IDLE_WAIT_S, (due - self.clock()) / 1000))
            self._wake.wait(wait)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """For tests and shutdown: until nothing is waiting (sent or dead), or ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            stats = self.outbox.stats()
            if not any(s.queued for s in stats.values()):
                with self._busy:
                    return True
            self._wake.set()
            time.sleep(0.02)
        return False

    def close(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._thread is None or not self._thread.is_alive():  # a sender stuck past timeout keeps its file
            self.outbox.close()
