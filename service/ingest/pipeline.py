"""Receiving separate from writing: the MQTT thread only enqueues; a writer decodes, commits, then acknowledges.

The delivery guarantee (issue 7) lives here: a message's acknowledgement token is handed to ``ack``
only after every record it carried is committed to the store, or recorded there as a rejection.
A transient store fault (``StoreUnavailable``) keeps the batch and retries it with backoff, never
acknowledging, so the broker keeps (and on reconnect redelivers) everything not yet committed;
content the store refuses (``StoreRejected``) is bisected down to the offending records, which
become rejections, so one bad record can neither block ingestion nor cost its neighbours.
Issue 11: a ``StoreFault`` (a missing column after a bad deploy, a corrupt file) is held like an
outage, as is a batch most of whose records are refused (that smells of the store, not the data);
an unmapped exception is retried, and after ``POISON_AFTER`` identical failures the batch is
bisected so the poison record becomes a ``store_error`` rejection and the rest flows. ``stop``
never waits longer than its timeout plus ``STOP_JOIN_S``, even for a writer stuck in the store.

Batching and the broker's inflight window: with manual acknowledgement the broker sends at most
``max_inflight_messages`` (Mosquitto: 20 by default) unacknowledged messages, then waits for acks.
A writer that waited ``flush_ms`` to fill a batch would cap throughput at window / flush_ms
(20 / 0.2 s = 100 messages/s). So the writer commits as soon as the inbox runs dry (group commit):
under load it never runs dry and batches grow toward ``batch_size``; when idle each message is
committed at once. ``flush_ms`` bounds how long a batch keeps gathering while messages still flow
in; ``queue_max`` bounds memory when the broker sends more than the inbox holds: Mosquitto 2.0.11
keeps the window for live traffic but, draining a persistent session's offline backlog, releases
up to a window's worth per acknowledgement, and then a full inbox blocks the MQTT thread
(back-pressure) until the writer catches up.

Why the hand-off is a bare deque (bench/README.md has the profile): paho's network thread and the
writer share one GIL, so every microsecond the MQTT thread spends per message is taken from the
writer too. ``submit`` therefore does no decoding, takes no lock and allocates one tuple; the
writer decodes in its own loop, builds one ``Batch`` per commit, and wakes the MQTT thread only when
it is actually blocked. ``deque.append``/``popleft`` are atomic under the GIL, and there is one
producer (the MQTT thread) and one consumer (the writer).
"""

from __future__ import annotations

import bisect
import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import orjson

from ..errors import StoreFault, StoreRejected, StoreUnavailable
from ..payloads import Decoded, PayloadDecoder, RetainedMemory, excerpt
from ..records import Batch, Reading, Rejection, StatusChange, YieldRecord
from ..store.base import Store

log = logging.getLogger(__name__)

State = Literal["stopped", "running", "store_unavailable", "store_error", "stopping"]
Record = Reading | YieldRecord | StatusChange | Rejection
Message = tuple[str, bytes, int, int, bool]  # topic, payload, ack token, receive time (epoch ms), retained

BACKOFF_FIRST_S = 0.05
POISON_AFTER = 5  # identical unmapped write failures in a row before the batch is bisected for poison
MOST_REFUSED_SAMPLE = 8  # a batch over half refused is held; one smaller than this takes in more messages first
SMALL_BATCH_PATIENCE = 3  # a small held batch that no new traffic joins is split after this many retries
# How long a large batch most of whose records the store refuses is held before the refusals are taken
# as the data's: a store-wide conflict gets time for an operator (health says store_error meanwhile),
# but one message of many bad records cannot block every device's data until the broker's queue overflows.
HOLD_REFUSED_S = 600.0
STOP_JOIN_S = 5.0  # after the drain timeout, how long stop() still waits for a writer stuck in the store
BACKOFF_CAP_S = 5.0
_POLL_S = 0.1  # how often a blocked submit or an idle writer looks at the stop flags
# Upper bounds (seconds) of the store write latency histogram, as Prometheus buckets.


def wall_ms() -> int:
    """``times.now_ms`` without the datetime (0.12 µs, not 0.5 µs): it runs per message on the MQTT thread."""
    return time.time_ns() // 1_000_000


WRITE_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass(frozen=True)
class IngestStats:
    """This worker's view since it started; ``store.counters()`` holds the persistent totals."""

    state: State
    worker: str
    received: int  # messages submitted, retained repeats excluded
    accepted: int  # records committed
    rejected: dict[str, int]  # reason → records recorded as rejected
    queue_depth: int  # messages waiting for the writer
    pending: int  # messages received and not yet committed (queue + the batch being written)
    last_commit_ms: int | None
    lag_ms: int  # now − receive time of the oldest message not yet committed; 0 when none
    store_error: str = ""  # the last store fault while it lasts
    retained_repeats: int = 0  # retained messages handed over again after a reconnect: acked, not counted
    dropped: int = 0  # records neither stored nor recordable as rejections (see _refuse)
    writes: int = 0  # successful store writes (commits)
    write_seconds: float = 0.0  # their total duration
    write_buckets: tuple[int, ...] = ()  # writes per bucket of write_bounds (not cumulative), then the overflow
    write_bounds: tuple[float, ...] = WRITE_BUCKETS_S  # upper bounds (s): the web's /metrics never imports ingest


@dataclass
class _Part:
    """A batch or a piece of one; ``messages`` rides on the first piece so it is counted once."""

    batch: Batch
    messages: int = 0


class IngestPipeline:
    """Lifecycle: ``start()`` → ``submit()`` from the MQTT thread → ``stop(drain=True)``.

    ``ack`` receives the tokens passed to ``submit``, in submission order, once they are committed.
    It is called on the writer thread and must not block for long. ``submit`` has one caller at a
    time (the MQTT network thread).
    """

    def __init__(
        self,
        decoder: PayloadDecoder,
        store: Store,
        *,
        worker: str,
        batch_size: int = 2000,
        flush_ms: int = 200,
        queue_max: int = 20000,
        clock: Callable[[], int] = wall_ms,
        ack: Callable[[list[int]], None],
        backoff_first_s: float = BACKOFF_FIRST_S,
        backoff_cap_s: float = BACKOFF_CAP_S,
        hold_refused_s: float = HOLD_REFUSED_S,
    ) -> None:
        self.decoder = decoder
        self.store = store
        self.worker = worker
        self.batch_size = batch_size
        self.flush_s = flush_ms / 1000
        self.queue_max = queue_max
        self.clock = clock
        self._ack = ack
        self._backoff_first_s = backoff_first_s
        self._backoff_cap_s = backoff_cap_s
        self._hold_refused_s = hold_refused_s
        self._inbox: deque[Message] = deque()
        self._wake = threading.Event()  # set by submit when the writer sleeps on an empty inbox
        self._writer_idle = False
        self._space = threading.Event()  # set by the writer when submit sleeps on a full inbox
        self._producer_blocked = False
        self._done = threading.Condition()  # notified after every settled batch (block_till_done)
        # Counters: each is written by one thread only (received/refused: MQTT; the rest: writer).
        self._received = 0
        self._retained = RetainedMemory()  # writer thread only
        self._repeats = 0  # retained messages seen before: acknowledged, not counted (issue 11)
        self._refused = 0  # submitted while stopping: not taken, not pending
        self._settled = 0  # messages committed and handed to ack
        self._batch_oldest: int | None = None  # receive time of the oldest message in the writer's hands
        self._accepted = 0
        self._dropped = 0
        self._rejected: Counter[str] = Counter()
        self._last_commit: int | None = None
        self._writes = 0
        self._write_seconds = 0.0
        self._write_buckets = [0] * (len(WRITE_BUCKETS_S) + 1)
        self._state: State = "stopped"
        self._store_error = ""
        self._stopping = threading.Event()  # no more submits; drain what is queued
        self._abort = threading.Event()  # give up now: unacknowledged messages stay with the broker
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stopping.clear()
        self._abort.clear()
        self._state = "running"
        self._thread = threading.Thread(target=self._run, name=f"ingest-writer-{self.worker}", daemon=True)
        self._thread.start()

    def stop(self, drain: bool = True, timeout: float = 10.0, abort_s: float = STOP_JOIN_S) -> bool:
        """Stop the writer; with ``drain`` commit what is queued first (for at most ``timeout``),
        then give a writer inside ``store.write`` at most ``abort_s`` more.

        Returns whether everything received was committed. What was not stays unacknowledged, so
        the broker redelivers it to the next session.
        """
        thread = self._thread
        if thread is None:
            return self._pending() == 0
        self._state = "stopping"
        self._stopping.set()
        if not drain:
            self._abort.set()
        self._wake.set()
        self._space.set()
        thread.join(timeout)
        if thread.is_alive():
            self._abort.set()
            thread.join(abort_s)  # a writer stuck inside store.write cannot be interrupted: bounded
        left = self._pending()
        if thread.is_alive():
            log.error("ingest writer still inside the store after %.0f s; leaving %d message(s) "
                      "unacknowledged (the broker redelivers them)", timeout + abort_s, left)
        elif left:
            log.warning("stopped with %d message(s) unacknowledged (the broker redelivers them)", left)
        self._thread = None
        self._state = "stopped"
        return left == 0

    # -- the MQTT side ---------------------------------------------------------------------------

    def submit(self, topic: str, payload: bytes, token: int, retained: bool = False) -> bool:
        """Enqueue one message for the writer; blocks while the inbox is full (back-pressure).

        Returns False when the pipeline is stopping and the message was not taken: it must not be
        acknowledged, and the broker will redeliver it.
        """
        self._received += 1
        if self._stopping.is_set() or (len(self._inbox) >= self.queue_max and not self._wait_for_space()):
            self._refused += 1
            with self._done:
                self._done.notify_all()
            return False
        self._inbox.append((topic, payload, token, self.clock(), retained))
        if self._writer_idle:
            self._wake.set()
        return True

    def _wait_for_space(self) -> bool:
        while len(self._inbox) >= self.queue_max:
            if self._stopping.is_set():
                return False
            self._space.clear()
            self._producer_blocked = True  # announced before the re-check: the writer cannot miss us
            if len(self._inbox) >= self.queue_max:
                self._space.wait(_POLL_S)
            self._producer_blocked = False
        return not self._stopping.is_set()

    # -- observing -------------------------------------------------------------------------------

    def _pending(self) -> int:
        return self._received - self._refused - self._settled

    def block_till_done(self, timeout: float = 10.0) -> bool:
        """Wait until every submitted message is committed (and acknowledged); False on timeout."""
        deadline = time.monotonic() + timeout
        with self._done:
            while self._pending():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._done.wait(min(left, _POLL_S))
        return True

    def stats(self) -> IngestStats:
        now = self.clock()
        oldest = self._batch_oldest
        if oldest is None:
            try:
                oldest = self._inbox[0][3]
            except IndexError:
                oldest = None
        pending = self._pending()
        return IngestStats(
            state=self._state,
            worker=self.worker,
            received=self._received - self._repeats,
            retained_repeats=self._repeats,
            accepted=self._accepted,
            rejected=dict(self._rejected),
            queue_depth=len(self._inbox),
            pending=pending,
            last_commit_ms=self._last_commit,
            lag_ms=max(0, now - oldest) if oldest is not None and pending else 0,
            store_error=self._store_error,
            dropped=self._dropped,
            writes=self._writes,
            write_seconds=self._write_seconds,
            write_buckets=tuple(self._write_buckets),
        )

    # -- the writer ------------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            taken = self._take()
            if taken is None:
                return
            part, tokens = taken
            if not self._commit(part, tokens):
                return  # aborted mid-retry: leave the rest to the broker

    def _wait_for_work(self) -> bool:
        """Sleep until the inbox has a message; False when stopping with nothing left (or aborting)."""
        inbox = self._inbox
        while not inbox:
            if self._abort.is_set() or self._stopping.is_set():
                return False
            self._wake.clear()
            self._writer_idle = True  # announced before the re-check: submit cannot miss us
            if not inbox:
                self._wake.wait(_POLL_S)
            self._writer_idle = False
        return not self._abort.is_set()

    def _take(self) -> tuple[_Part, list[int]] | None:
        """Decode messages into one batch while more are at hand (see module docstring)."""
        if not self._wait_for_work():
            return None
        inbox, decode, size_max = self._inbox, self.decoder.decode, self.batch_size
        self._batch_oldest = inbox[0][3]
        batch = Batch(worker=self.worker)
        readings, yields, statuses, rejections = batch.readings, batch.yields, batch.statuses, batch.rejections
        tokens: list[int] = []
        deadline = time.monotonic() + self.flush_s
        size = repeats = 0
        while inbox and size < size_max:
            topic, payload, token, received, retained = inbox.popleft()
            if self._retained.repeat(topic, payload, retained):
                tokens.append(token)
                repeats += 1
                continue
            try:
                d = decode(topic, payload, received, retained)
            except Exception as exc:  # a decoder bug must cost one message, never the writer
                log.exception("decoder failed on %s", topic[:200])
                d = Decoded(rejections=[Rejection(received, topic, "", "bad_record",
                                                  f"decoder failed: {exc!r}"[:300], excerpt(payload))])
            readings += d.readings
            if d.yields:
                yields += d.yields
            if d.statuses:
                statuses += d.statuses
            if d.rejections:
                rejections += d.rejections
            size = len(readings) + len(yields) + len(statuses) + len(rejections)
            tokens.append(token)
            if len(tokens) % 64 == 0:
                if self._producer_blocked:
                    self._space.set()
                if time.monotonic() > deadline:
                    break
        if self._producer_blocked:
            self._space.set()
        self._repeats += repeats
        batch.messages = len(tokens) - repeats
        return _Part(batch, batch.messages), tokens

    def _commit(self, first: _Part, tokens: list[int]) -> bool:
        """Write a taken batch until all of it is stored or recorded as rejected, then acknowledge.

        Held (retried with back-off, never acknowledged, shown in ``stats``): ``StoreUnavailable``,
        ``StoreFault``, and a batch most of whose records the store refuses. Split: ``StoreRejected``
        at once, an unmapped exception after ``POISON_AFTER`` identical failures (the poison record
        becomes a ``store_error`` rejection, so the rest flows). Returns False when aborted.
        """
        parts: deque[_Part] = deque([first])
        total = _size(first.batch)
        refused: list[tuple[Record, str, str]] = []  # (record, reason, detail) singles, not yet rejections
        carried = 0  # messages that rode on refused singles
        delay = self._backoff_first_s
        last_error, repeats = "", 0  # the last unmapped failure and how often it came in a row
        isolating = held = trusted = False
        patience = SMALL_BATCH_PATIENCE  # retries of a small held batch before its refusals count as the data's
        held_at = 0.0  # when the batch was first held (monotonic s): a large one is held HOLD_REFUSED_S at most

        def backoff(state: State, message: str, floor: float = 0.0) -> bool:
            nonlocal delay
            wait = min(self._backoff_cap_s, max(delay, floor))
            self._fault(state, message, wait)
            delay = min(self._backoff_cap_s, delay * 2)
            return not self._abort.wait(wait)

        def hold(message: str) -> None:
            nonlocal parts, refused, carried, held, held_at
            if not held_at:
                held_at = time.monotonic()
            records = [r for r, _, _ in refused] + [r for p in parts for r in _records(p.batch)]
            messages = carried + sum(p.messages for p in parts)
            log.error("the store refused %d of %d records (%s): a store fault, not the data's; holding the batch",
                      len(refused), total, message)
            parts = deque([_Part(_batch(records, self.worker), messages)])
            refused, carried, held = [], 0, True

        def grow() -> bool:
            """A held batch too small to judge takes in the next messages: if most of those are
            stored, its refused records are a minority after all (the data's fault, not the store's)."""
            nonlocal total, held
            if total >= MOST_REFUSED_SAMPLE or not self._inbox or self._abort.is_set():
                return False
            oldest = self._batch_oldest
            more = self._take()
            self._batch_oldest = oldest
            if more is None:
                return False
            head = parts[0]
            merged = _records(head.batch) + _records(more[0].batch)
            parts[0] = _Part(_batch(merged, self.worker), head.messages + more[0].messages)
            tokens.extend(more[1])
            total, held = len(merged), False
            return True

        while parts:
            part = parts[0]
            part.batch.messages = part.messages
            started = time.perf_counter()
            try:
                self.store.write(part.batch)
            except StoreUnavailable as exc:
                if not backoff("store_unavailable", f"{exc}", exc.retry_after_s or 0.0):
                    return False
                continue
            except StoreFault as exc:
                if not backoff("store_error", f"{exc}"):
                    return False
                continue
            except StoreRejected as exc:
                if held and not grow():
                    small = total < MOST_REFUSED_SAMPLE
                    if patience > 0 if small else time.monotonic() - held_at < self._hold_refused_s:
                        patience -= 1
                        if not backoff("store_error", f"most records of the batch refused: {exc}"):
                            return False
                        continue
                    # A batch too small to judge that no traffic came to outvote, or a large one held for
                    # HOLD_REFUSED_S: the refusals are taken as the data's (else one message of bad records
                    # blocks every device until the broker's queue overflows, which loses more).
                    log.error("the store still refuses %d records after the hold; recording them as rejections",
                              total)
                    held, trusted = False, True
                elif held:
                    continue
                carried += self._refuse(parts, exc.reason or "store_rejected", str(exc)[:300], refused)
            except Exception as exc:  # unmapped: retry; the same failure POISON_AFTER times → isolate
                error = f"{type(exc).__name__}: {exc}"[:300]
                repeats = repeats + 1 if error == last_error else 1
                last_error = error
                if held and grow():
                    continue
                if held or (not isolating and repeats < POISON_AFTER):
                    if repeats == 1:
                        log.exception("store.write failed with an unmapped error; retrying")
                    if not backoff("store_error", error):
                        return False
                    continue
                if not isolating:
                    log.error("store.write failed %d times with %s; isolating the poison record(s)", repeats, error)
                isolating = True
                carried += self._refuse(parts, "store_error", error, refused)
            else:
                parts.popleft()
                self._committed(part.batch, time.perf_counter() - started)
                last_error, repeats = "", 0
            if refused and 2 * len(refused) > total and not held and not trusted:
                detail = refused[0][2]
                hold(detail)
                if not grow() and not backoff("store_error", f"most records of the batch refused: {detail}"):
                    return False
                continue
            if not parts and refused:  # a minority refused: they become rejections, stored like data
                now = self.clock()
                parts.append(_Part(_batch([_as_rejection(r, reason, detail, now) for r, reason, detail in refused],
                                          self.worker), carried))
                refused, carried = [], 0
        try:
            self._ack(tokens)
        except Exception:  # unacknowledged messages are redelivered: log, never kill the writer
            log.exception("acknowledging %d committed messages failed", len(tokens))
        self._batch_oldest = None
        self._settled += len(tokens)
        with self._done:
            self._done.notify_all()
        return True

    def _refuse(self, parts: deque[_Part], reason: str, detail: str,
                refused: list[tuple[Record, str, str]]) -> int:
        """Halve the refused head of ``parts``; a single record joins ``refused``. The messages it
        carried are returned (they ride on the rejections, or on the held batch)."""
        part = parts.popleft()
        records = _records(part.batch)
        if len(records) > 1:
            mid = len(records) // 2
            parts.extendleft([_Part(_batch(records[mid:], self.worker)),
                              _Part(_batch(records[:mid], self.worker), part.messages)])
            return 0
        if records:
            record = records[0]
            if isinstance(record, Rejection):
                # The store refuses even the record of a refusal: nothing more can be done with it.
                log.error("store refused a rejection record %r: %s; dropped", record, detail)
                self._dropped += 1
            else:
                refused.append((record, reason, detail))
        return part.messages

    def _fault(self, state: State, message: str, wait: float) -> None:
        if self._state != state:
            log.warning("store %s (%s); holding the batch, retrying every ≤%.1f s", state, message, wait)
        self._state = state
        self._store_error = message

    def _committed(self, batch: Batch, seconds: float) -> None:
        if self._state in ("store_unavailable", "store_error"):
            log.info("store available again; draining")
            self._state = "stopping" if self._stopping.is_set() else "running"
            self._store_error = ""
        self._last_commit = self.clock()
        self._accepted += len(batch.readings) + len(batch.yields) + len(batch.statuses)
        for r in batch.rejections:
            self._rejected[r.reason] += 1
        self._writes += 1
        self._write_seconds += seconds
        self._write_buckets[bisect.bisect_left(WRITE_BUCKETS_S, seconds)] += 1


def _records(b: Batch) -> list[Record]:
    return [*b.readings, *b.yields, *b.statuses, *b.rejections]


def _batch(records: list[Record], worker: str) -> Batch:
    b = Batch(worker=worker)
    for r in records:
        if isinstance(r, Reading):
            b.readings.append(r)
        elif isinstance(r, YieldRecord):
            b.yields.append(r)
        elif isinstance(r, StatusChange):
            b.statuses.append(r)
        else:
            b.rejections.append(r)
    return b


def _size(b: Batch) -> int:
    return len(b.readings) + len(b.yields) + len(b.statuses) + len(b.rejections)


def _as_rejection(record: Record, reason: str, detail: str, received: int) -> Rejection:
    if isinstance(record, Reading):
        kind, body = "telemetry", {"ts": record.ts, "readings": record.values}
    elif isinstance(record, YieldRecord):
        kind = "yield"
        body = {"ts": record.ts, "crop": record.crop, "area_ha": record.area_ha, "yield_kg": record.yield_kg,
                "plot": record.plot}
    elif isinstance(record, StatusChange):
        kind, body = "status", {"ts": record.ts, "online": record.online}
    else:
        return record
    topic = f"nongyun/v1/{record.device}/{kind}"
    return Rejection(received, topic, record.device, reason, detail[:300], excerpt(orjson.dumps(body)))
