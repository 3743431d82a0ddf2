"""Receiving separate from writing: decode and enqueue on the MQTT thread, commit then acknowledge on a writer.

The delivery guarantee (issue 7) lives here: a message's acknowledgement token is handed to ``ack``
only after every record it carried is committed to the store, or recorded there as a rejection.
A transient store fault (``StoreUnavailable``) keeps the batch and retries it with backoff, never
acknowledging, so the broker keeps (and on reconnect redelivers) everything not yet committed;
content the store refuses (``StoreRejected``) is bisected down to the offending records, which
become rejections, so one bad record can neither block ingestion nor cost its neighbours.

Batching and the broker's inflight window: with manual acknowledgement the broker sends at most
``max_inflight_messages`` (Mosquitto: 20 by default) unacknowledged messages, then waits for acks.
A writer that waited ``flush_ms`` to fill a batch would cap throughput at window / flush_ms
(20 / 0.2 s = 100 messages/s). So the writer commits as soon as the queue runs dry (group commit):
under load the queue never runs dry and batches grow toward ``batch_size``; when idle each message
is committed at once. ``flush_ms`` bounds how long a batch keeps gathering while messages still
flow in; ``queue_max`` bounds memory when the broker sends more than the queue holds: Mosquitto
2.0.11 keeps the window for live traffic but, draining a persistent session's offline backlog,
releases up to a window's worth per acknowledgement (batches of 2,000 were seen with a window of
20), and then a full queue blocks the MQTT thread (back-pressure) until the writer catches up.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import orjson

from ..errors import StoreRejected, StoreUnavailable
from ..payloads import Decoded, PayloadDecoder, excerpt
from ..records import Batch, Reading, Rejection, StatusChange, YieldRecord
from ..store.base import Store
from ..times import now_ms

log = logging.getLogger(__name__)

State = Literal["stopped", "running", "store_unavailable", "store_error", "stopping"]
Record = Reading | YieldRecord | StatusChange | Rejection

BACKOFF_FIRST_S = 0.05
BACKOFF_CAP_S = 5.0
_POLL_S = 0.1  # how often a blocked submit or an idle writer looks at the stop flags


@dataclass(frozen=True)
class IngestStats:
    """This worker's view since it started; ``store.counters()`` holds the persistent totals."""

    state: State
    worker: str
    received: int  # messages submitted
    accepted: int  # records committed
    rejected: dict[str, int]  # reason → records recorded as rejected
    queue_depth: int  # messages waiting for the writer
    pending: int  # messages received and not yet committed (queue + the batch being written)
    last_commit_ms: int | None
    lag_ms: int  # now − receive time of the oldest message not yet committed; 0 when none
    store_error: str = ""  # the last store fault while it lasts
    dropped: int = 0  # records neither stored nor recordable as rejections (see _split)


@dataclass(slots=True)
class _Item:
    decoded: Decoded
    token: int
    received_ms: int


@dataclass
class _Part:
    """A batch or a piece of one; ``messages`` rides on the first piece so it is counted once."""

    records: list[Record]
    messages: int = 0


class IngestPipeline:
    """Lifecycle: ``start()`` → ``submit()`` from the MQTT thread → ``stop(drain=True)``.

    ``ack`` receives the tokens passed to ``submit``, in submission order, once they are committed.
    It is called on the writer thread and must not block for long.
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
        clock: Callable[[], int] = now_ms,
        ack: Callable[[list[int]], None],
        backoff_first_s: float = BACKOFF_FIRST_S,
        backoff_cap_s: float = BACKOFF_CAP_S,
    ) -> None:
        self.decoder = decoder
        self.store = store
        self.worker = worker
        self.batch_size = batch_size
        self.flush_s = flush_ms / 1000
        self.clock = clock
        self._ack = ack
        self._backoff_first_s = backoff_first_s
        self._backoff_cap_s = backoff_cap_s
        self._queue: queue.Queue[_Item] = queue.Queue(maxsize=queue_max)
        self._cond = threading.Condition()
        self._receive_times: deque[int] = deque()  # of messages submitted and not yet committed
        self._received = 0
        self._accepted = 0
        self._dropped = 0
        self._rejected: Counter[str] = Counter()
        self._last_commit: int | None = None
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

    def stop(self, drain: bool = True, timeout: float = 10.0) -> bool:
        """Stop the writer; with ``drain`` commit what is queued first (for at most ``timeout``).

        Returns whether everything received was committed. What was not stays unacknowledged, so
        the broker redelivers it to the next session.
        """
        thread = self._thread
        if thread is None:
            return True
        self._state = "stopping"
        self._stopping.set()
        if not drain:
            self._abort.set()
        thread.join(timeout)
        if thread.is_alive():
            self._abort.set()
            thread.join()
        self._thread = None
        self._state = "stopped"
        with self._cond:
            return not self._receive_times

    # -- the MQTT side ---------------------------------------------------------------------------

    def submit(self, topic: str, payload: bytes, token: int) -> bool:
        """Decode and enqueue one message; blocks while the queue is full (back-pressure).

        Returns False when the pipeline is stopping and the message was not taken: it must not be
        acknowledged, and the broker will redeliver it.
        """
        received = self.clock()
        try:
            decoded = self.decoder.decode(topic, payload, received)
        except Exception as exc:  # a decoder bug must cost one message, never the MQTT thread
            log.exception("decoder failed on %s", topic[:200])
            decoded = Decoded(rejections=[Rejection(received, topic, "", "bad_record",
                                                    f"decoder failed: {exc!r}"[:300], excerpt(payload))])
        item = _Item(decoded, token, received)
        with self._cond:
            self._received += 1
            self._receive_times.append(received)
        while True:
            if self._stopping.is_set():
                with self._cond:
                    self._receive_times.pop()  # the one just appended: there is one producer
                    self._cond.notify_all()
                return False
            try:
                self._queue.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue

    # -- observing -------------------------------------------------------------------------------

    def block_till_done(self, timeout: float = 10.0) -> bool:
        """Wait until every submitted message is committed (and acknowledged); False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._receive_times:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def stats(self) -> IngestStats:
        now = self.clock()
        with self._cond:
            oldest = self._receive_times[0] if self._receive_times else None
            return IngestStats(
                state=self._state,
                worker=self.worker,
                received=self._received,
                accepted=self._accepted,
                rejected=dict(self._rejected),
                queue_depth=self._queue.qsize(),
                pending=len(self._receive_times),
                last_commit_ms=self._last_commit,
                lag_ms=max(0, now - oldest) if oldest is not None else 0,
                store_error=self._store_error,
                dropped=self._dropped,
            )

    # -- the writer ------------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            items = self._take()
            if not items:
                return
            if not self._commit(items):
                return  # aborted mid-retry: leave the rest to the broker

    def _take(self) -> list[_Item]:
        """Block for the first message, then gather while more are at hand (see module docstring)."""
        while True:
            if self._abort.is_set():
                return []
            try:
                first = self._queue.get(timeout=_POLL_S)
                break
            except queue.Empty:
                if self._stopping.is_set():
                    return []
        items = [first]
        size = _size(first.decoded)
        deadline = time.monotonic() + self.flush_s
        while size < self.batch_size and time.monotonic() < deadline:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            items.append(item)
            size += _size(item.decoded)
        return items

    def _commit(self, items: list[_Item]) -> bool:
        records: list[Record] = []
        for it in items:
            d = it.decoded
            records.extend(d.readings)
            records.extend(d.yields)
            records.extend(d.statuses)
            records.extend(d.rejections)
        parts: deque[_Part] = deque([_Part(records, messages=len(items))])
        delay = self._backoff_first_s
        while parts:
            part = parts[0]
            try:
                self.store.write(_batch(part, self.worker))
            except StoreUnavailable as exc:
                wait = min(self._backoff_cap_s, max(delay, exc.retry_after_s or 0.0))
                self._fault("store_unavailable", f"{exc}", wait)
                if self._abort.wait(wait):
                    return False
                delay = min(self._backoff_cap_s, delay * 2)
                continue
            except StoreRejected as exc:
                parts.popleft()
                parts.extendleft(reversed(self._split(part, exc)))
                continue
            except Exception as exc:  # an unmapped backend fault: keep the data, retry, show it
                log.exception("store.write failed with an unmapped error; retrying")
                wait = min(self._backoff_cap_s, delay)
                self._fault("store_error", repr(exc)[:300], wait)
                if self._abort.wait(wait):
                    return False
                delay = min(self._backoff_cap_s, delay * 2)
                continue
            parts.popleft()
            self._committed(part)
        try:
            self._ack([it.token for it in items])
        except Exception:  # unacknowledged messages are redelivered: log, never kill the writer
            log.exception("acknowledging %d committed messages failed", len(items))
        with self._cond:
            for _ in items:
                self._receive_times.popleft()
            self._cond.notify_all()
        return True

    def _fault(self, state: State, message: str, wait: float) -> None:
        if self._state != state:
            log.warning("store %s (%s); holding the batch, retrying every ≤%.1f s", state, message, wait)
        with self._cond:
            self._state = state
            self._store_error = message

    def _committed(self, part: _Part) -> None:
        with self._cond:
            if self._state in ("store_unavailable", "store_error"):
                log.info("store available again; draining")
                self._state = "stopping" if self._stopping.is_set() else "running"
                self._store_error = ""
            self._last_commit = self.clock()
            for r in part.records:
                if isinstance(r, Rejection):
                    self._rejected[r.reason] += 1
                else:
                    self._accepted += 1

    def _split(self, part: _Part, exc: StoreRejected) -> list[_Part]:
        """Halve a refused batch until the refused records stand alone; those become rejections."""
        if len(part.records) > 1:
            mid = len(part.records) // 2
            return [_Part(part.records[:mid], part.messages), _Part(part.records[mid:])]
        if not part.records:
            return []
        record = part.records[0]
        if isinstance(record, Rejection):
            # The store refuses even the record of a refusal: nothing more can be done with it.
            log.error("store refused a rejection record %r: %s; dropped", record, exc)
            with self._cond:
                self._dropped += 1
            return [_Part([], part.messages)] if part.messages else []
        rejection = _as_rejection(record, exc, self.clock())
        return [_Part([rejection], part.messages)]


def _size(d: Decoded) -> int:
    return len(d.readings) + len(d.yields) + len(d.statuses) + len(d.rejections)


def _batch(part: _Part, worker: str) -> Batch:
    b = Batch(messages=part.messages, worker=worker)
    for r in part.records:
        if isinstance(r, Reading):
            b.readings.append(r)
        elif isinstance(r, YieldRecord):
            b.yields.append(r)
        elif isinstance(r, StatusChange):
            b.statuses.append(r)
        else:
            b.rejections.append(r)
    return b


def _as_rejection(record: Reading | YieldRecord | StatusChange, exc: StoreRejected, received: int) -> Rejection:
    if isinstance(record, Reading):
        kind, body = "telemetry", {"ts": record.ts, "readings": record.values}
    elif isinstance(record, YieldRecord):
        kind = "yield"
        body = {"ts": record.ts, "crop": record.crop, "area_ha": record.area_ha, "yield_kg": record.yield_kg,
                "plot": record.plot}
    else:
        kind, body = "status", {"ts": record.ts, "online": record.online}
    topic = f"nongyun/v1/{record.device}/{kind}"
    return Rejection(received, topic, record.device, exc.reason or "store_rejected", str(exc)[:300],
                     excerpt(orjson.dumps(body)))
