"""How fast nongyun ingest drains MQTT telemetry into the embedded store, against a bare paho subscriber.

    python bench/ingest_drain.py                       # drain, shared, live and memory, 3 runs each
    python bench/ingest_drain.py --modes drain --runs 3 --messages 40000
    python bench/ingest_drain.py --modes memory --memory-messages 200000
    python bench/ingest_drain.py --modes drain --runs 3 --trees /tmp/before,.   # versions A/B, same run

Modes (each run starts a private Mosquitto on a free loopback port):

- ``drain``: N messages queue in a persistent QoS 1 session while the consumer is away; then the
  bare subscriber (paho, QoS 1, auto-ack, only counts) and ``python -m service.cli ingest`` (decode,
  SqliteStore commit, then acknowledge), each a process of its own, drain their own copy: bare from
  its first to its N-th message, ingest from its first commit to its N-th record. The figure is the
  ratio ingest/bare of the same run; the median of the runs is reported.
- ``shared``: two consumers on ``$share/nongyun/...`` split one backlog: two bare subscriber
  processes, then two ``python -m service.cli ingest`` processes writing one store file.
- ``live``: the consumer is connected first, then a publisher process sends N messages; the rate is
  N / (time from the first publish until the consumer has everything).
- ``memory``: one ``python -m service.cli ingest`` process drains ``--memory-messages``; its peak
  RSS (VmHWM) and drain rate.

Every ingest run checks that nothing was lost and each message was stored once: the store holds
exactly one row per value sent, and its counters show N messages received and N records accepted.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common
from common import ROOT, broker, context, make_sessions, publish, store_totals, wait_until

from service.ingest import connect
from service.payloads import PayloadDecoder
from service.settings import load
from service.store.sqlite import SqliteStore

GROUP = "nongyun"


@dataclass
class Drain:
    seconds: float
    cpu_s: float = 0.0

    def rate(self, n: int) -> float:
        return n / self.seconds


def cid(kind: str) -> str:
    return f"bench-{kind}-{uuid.uuid4().hex[:8]}"


# -- consumers -------------------------------------------------------------------------------------


class BareSubscriber:
    """paho, MQTT 3.1.1, QoS 1 with paho's automatic PUBACK, a persistent session; counts messages."""

    def __init__(self, port: int, client_id: str, subscribe: bool = False) -> None:
        self.count = 0
        self.first = self.last = self.cpu_first = 0.0
        self.subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False,
                                  protocol=MQTTProtocolVersion.MQTTv311)
        self.client.on_message = self._on_message
        if subscribe:  # a new session (live); a drained one was subscribed by make_sessions
            self.client.on_connect = lambda c, *a: c.subscribe([(t, 1) for t in common.TOPICS])
            self.client.on_subscribe = lambda *a: self.subscribed.set()
        self.port = port

    def _on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        if not self.count:
            self.first = time.time()
            self.cpu_first = time.process_time()
        self.count += 1
        self.last = time.time()

    def start(self) -> None:
        self.client.connect("127.0.0.1", self.port)
        self.client.loop_start()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def check_once(db: Path, n: int, values: int) -> None:
    """Nothing lost, each stored once: one row per value, N messages received, N records accepted."""
    rows, accepted, received = store_totals(db)
    if (rows, accepted, received) != (values, n, n):
        raise AssertionError(f"store holds {rows} rows (want {values}), accepted {accepted} and "
                             f"received {received} (want {n})")


# -- modes -----------------------------------------------------------------------------------------


def mode_drain(messages: list[tuple[str, bytes]], values: int, runs: int, inflight: int) -> dict[str, float]:
    n = len(messages)
    bare_rates, ingest_rates, ratios, bare_cpu, ingest_cpu = [], [], [], [], []
    for run in range(runs):
        with tempfile.TemporaryDirectory() as tmp, broker(Path(tmp), inflight) as b:
            ids = {"bare": cid("bare"), "ingest": cid("ingest")}
            make_sessions(b.port, list(ids.values()))
            publish(b.port, messages)  # one backlog, queued once for each session
            order = ["bare", "ingest"] if run % 2 == 0 else ["ingest", "bare"]
            got: dict[str, Drain] = {}
            for kind in order:
                if kind == "bare":
                    got[kind] = drain_bare_process(b.port, ids[kind], n)
                else:
                    got[kind], db = drain_ingest_process(b.port, ids[kind], n, Path(tmp) / "data",
                                                         Path(tmp) / "ingest.log")
                    check_once(db, n, values)
        bare_rates.append(got["bare"].rate(n))
        ingest_rates.append(got["ingest"].rate(n))
        ratios.append(ingest_rates[-1] / bare_rates[-1])
        bare_cpu.append(got["bare"].cpu_s / n * 1e6)
        ingest_cpu.append(got["ingest"].cpu_s / n * 1e6)
        print(f"  run {run + 1}: bare {bare_rates[-1]:8,.0f} msg/s ({bare_cpu[-1]:.0f} µs CPU/msg)   "
              f"ingest {ingest_rates[-1]:8,.0f} msg/s ({ingest_cpu[-1]:.0f} µs CPU/msg)   "
              f"ratio {ratios[-1]:.2f}", flush=True)
    m = statistics.median
    result = {"bare_msg_s": m(bare_rates), "ingest_msg_s": m(ingest_rates),
              "ingest_values_s": m(ingest_rates) * values / n, "ratio": m(ratios),
              "bare_cpu_us": m(bare_cpu), "ingest_cpu_us": m(ingest_cpu)}
    print(f"drain (inflight {inflight}), median of {runs}: bare {result['bare_msg_s']:,.0f} msg/s, ingest "
          f"{result['ingest_msg_s']:,.0f} msg/s = {result['ingest_values_s']:,.0f} values/s, "
          f"ratio {result['ratio']:.2f}; CPU/msg bare {result['bare_cpu_us']:.0f} µs, "
          f"ingest {result['ingest_cpu_us']:.0f} µs", flush=True)
    return result


def mode_compare(messages: list[tuple[str, bytes]], values: int, runs: int, inflight: int,
                 trees: list[Path]) -> dict[str, float]:
    """Drain mode for versions of the code: each tree's ``nongyun ingest`` (and the bare subscriber)
    drains its own copy of one backlog per run, in an order that rotates from run to run. Also
    checks that every version stored the same points (names, times, values) and latest values."""
    n = len(messages)
    kinds = ["bare", *(str(t) for t in trees)]
    rates: dict[str, list[float]] = {k: [] for k in kinds}
    cpu: dict[str, list[float]] = {k: [] for k in kinds}
    for run in range(runs):
        with tempfile.TemporaryDirectory() as tmp, broker(Path(tmp), inflight) as b:
            ids = {k: cid(f"c{i}") for i, k in enumerate(kinds)}
            make_sessions(b.port, list(ids.values()))
            publish(b.port, messages)
            order = kinds[run % len(kinds):] + kinds[:run % len(kinds)]
            digests: dict[str, str] = {}
            for i, kind in enumerate(order):
                if kind == "bare":
                    got = drain_bare_process(b.port, ids[kind], n)
                else:
                    got, db = drain_ingest_process(b.port, ids[kind], n, Path(tmp) / f"data{i}",
                                                   Path(tmp) / f"ingest{i}.log", root=Path(kind))
                    check_once(db, n, values)
                    digests[kind] = stored_digest(db)
                rates[kind].append(got.rate(n))
                cpu[kind].append(got.cpu_s / n * 1e6)
            if len(set(digests.values())) != 1:
                raise AssertionError(f"the versions stored different points: {digests}")
        print(f"  run {run + 1}: " + "   ".join(
            f"{k if k == 'bare' else Path(k).name} {rates[k][-1]:8,.0f} msg/s ({cpu[k][-1]:.0f} µs CPU/msg"
            + ("" if k == "bare" else f", ratio {rates[k][-1] / rates['bare'][-1]:.2f}") + ")" for k in kinds),
            flush=True)
    m = statistics.median
    result: dict[str, float] = {"bare_msg_s": m(rates["bare"]), "bare_cpu_us": m(cpu["bare"])}
    print(f"compare (inflight {inflight}), median of {runs}: bare {result['bare_msg_s']:,.0f} msg/s, "
          f"{result['bare_cpu_us']:.0f} µs CPU/msg", flush=True)
    for k in kinds[1:]:
        ratio = m([r / b for r, b in zip(rates[k], rates["bare"], strict=True)])
        vs_first = m([r / f for r, f in zip(rates[k], rates[kinds[1]], strict=True)])
        result[f"{k}:ratio"], result[f"{k}:msg_s"] = ratio, m(rates[k])
        print(f"  {k}: {m(rates[k]):,.0f} msg/s, {m(cpu[k]):.0f} µs CPU/msg, ratio to bare {ratio:.2f}, "
              f"to {Path(kinds[1]).name} {vs_first:.2f} (medians of per-run ratios)", flush=True)
    return result


def stored_digest(db: Path) -> str:
    """A hash of what a drain stored, by names (ids are per file): every point and every latest value."""
    import hashlib
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        h = hashlib.sha256()
        for sql in ("SELECT m.name, r.ts, r.village, d.name, r.value, typeof(r.value) FROM readings r "
                    "JOIN metric_ids m ON m.id = r.metric JOIN device_ids d ON d.id = r.device ORDER BY 1, 2, 3, 4",
                    "SELECT d.name, m.name, l.ts, l.village, l.value, typeof(l.value) FROM latest l "
                    "JOIN metric_ids m ON m.id = l.metric JOIN device_ids d ON d.id = l.device ORDER BY 1, 2"):
            for row in conn.execute(sql):
                h.update(repr(row).encode())
        return h.hexdigest()[:16]
    finally:
        conn.close()


def bare_process(port: int, client_id: str, expect: int = 0) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, __file__, "--bare-subscriber", str(port), client_id, str(expect)],
                            stdout=subprocess.PIPE, text=True)


def run_bare_subscriber(port: int, client_id: str, expect: int, idle_s: float = 1.0) -> None:
    """Child process: drain ``expect`` messages (0: until idle for ``idle_s``), print what was counted."""
    sub = BareSubscriber(port, client_id)
    sub.start()
    if expect:
        wait_until(lambda: sub.count >= expect, what="bare subscriber")
    else:
        wait_until(lambda: sub.count > 0 and time.time() - sub.last > idle_s, what="bare subscriber")
    cpu = time.process_time() - sub.cpu_first
    sub.stop()
    print(json.dumps({"count": sub.count, "first": sub.first, "last": sub.last, "cpu": cpu}), flush=True)


def drain_bare_process(port: int, client_id: str, n: int) -> Drain:
    """The bare subscriber in its own process: first message → n-th message."""
    report = json.loads(bare_process(port, client_id, n).communicate(timeout=600)[0])
    return Drain(report["last"] - report["first"], report["cpu"])


def drain_ingest_process(port: int, client_id: str, n: int, data_dir: Path, log: Path,
                         root: Path | None = None) -> tuple[Drain, Path]:
    """``python -m service.cli ingest``, as deployed: first commit → n-th record committed.

    Timed from the store file, read by this process (WAL readers never block the writer), so
    nothing in the measured process but ingest competes for its GIL.
    """
    db = data_dir / "nongyun.sqlite3"
    SqliteStore(db).close()  # the store exists: its creation is not part of the drain
    proc = common.spawn_ingest(port, data_dir, client_id, log=log) if root is None else \
        spawn_ingest_from(root, port, data_dir, client_id, log)
    try:
        cpu = common.ProcessCpu(proc.pid)

        def committed(at_least: int) -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"ingest exited early: see {log}")
            return common.accepted_in(db) >= at_least

        wait_until(lambda: committed(1), poll=0.002, what="first commit")
        t0, start, cpu0 = time.perf_counter(), common.accepted_in(db), cpu.seconds()
        wait_until(lambda: committed(n), poll=0.005)
        seconds, cpu_s = time.perf_counter() - t0, cpu.seconds() - cpu0
    finally:
        common.stop_process(proc)
    # the first batch is not in the interval: scale to n messages
    return Drain(seconds * n / (n - start), cpu_s * n / (n - start)), db


def spawn_ingest_from(root: Path, port: int, data_dir: Path, client_id: str, log: Path) -> subprocess.Popen[bytes]:
    """``common.spawn_ingest`` for another copy of the code (its own service/ and config/)."""
    env = dict(os.environ, NONGYUN_MQTT_URL=f"mqtt://127.0.0.1:{port}", NONGYUN_DATA_DIR=str(data_dir),
               NONGYUN_MQTT_CLIENT_ID=client_id, NONGYUN_MQTT_SHARED_GROUP="",
               NONGYUN_CONFIG=str(root / "config"), PYTHONPATH=str(root))
    out = open(log, "ab")  # noqa: SIM115 - the child keeps it
    return subprocess.Popen([sys.executable, "-m", "service.cli", "ingest"], cwd=root, env=env, stdout=out, stderr=out)


def mode_shared(messages: list[tuple[str, bytes]], values: int, runs: int, inflight: int,
                workers: int = 2) -> dict[str, float]:
    n = len(messages)
    bare_rates, ingest_rates, ratios = [], [], []
    for run in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            with broker(Path(tmp), inflight) as b:  # bare subscribers on the shared subscription
                ids = [cid(f"bare{i}") for i in range(workers)]
                make_sessions(b.port, ids, GROUP)
                publish(b.port, messages)
                procs = [bare_process(b.port, i) for i in ids]  # until idle
                reports = [json.loads(p.communicate(timeout=600)[0]) for p in procs]
                if sum(r["count"] for r in reports) != n:
                    raise AssertionError(f"bare subscribers counted {[r['count'] for r in reports]}, want {n}")
                bare = n / (max(r["last"] for r in reports) - min(r["first"] for r in reports))
            with broker(Path(tmp), inflight) as b:  # nongyun ingest processes, one store file
                ids = [cid(f"ingest{i}") for i in range(workers)]
                make_sessions(b.port, ids, GROUP)
                publish(b.port, messages)
                data = Path(tmp) / "data"
                db = data / "nongyun.sqlite3"
                # The store file exists before the workers start: two processes creating one new
                # SQLite file at the same instant can fail with "database is locked" (see README).
                SqliteStore(db).close()
                workers_ = [common.spawn_ingest(b.port, data, i, GROUP, Path(tmp) / f"{i}.log") for i in ids]
                try:
                    ingest = timed_commits(db, n, workers_)
                finally:
                    for w in workers_:
                        common.stop_process(w)
                check_once(db, n, values)
        bare_rates.append(bare)
        ingest_rates.append(ingest)
        ratios.append(ingest / bare)
        print(f"  run {run + 1}: {workers} bare {bare:8,.0f} msg/s   {workers} ingest {ingest:8,.0f} msg/s   "
              f"ratio {ratios[-1]:.2f}", flush=True)
    m = statistics.median
    result = {"bare_msg_s": m(bare_rates), "ingest_msg_s": m(ingest_rates), "ratio": m(ratios),
              "ingest_values_s": m(ingest_rates) * values / n}
    print(f"shared ({workers} processes, $share/{GROUP}), median of {runs}: bare {result['bare_msg_s']:,.0f} "
          f"msg/s, ingest {result['ingest_msg_s']:,.0f} msg/s = {result['ingest_values_s']:,.0f} values/s, "
          f"ratio {result['ratio']:.2f}", flush=True)
    return result


def timed_commits(db: Path, n: int, workers: list[subprocess.Popen[bytes]]) -> float:
    """Records/s committed into ``db`` by ``workers``, from their first commit to the n-th record."""

    def committed(at_least: int) -> bool:
        if any(w.poll() is not None for w in workers):
            raise RuntimeError("an ingest process exited early (its log is beside the store)")
        return common.accepted_in(db) >= at_least

    wait_until(lambda: committed(1), poll=0.005, what="first commit")
    t0, start = time.perf_counter(), common.accepted_in(db)
    wait_until(lambda: committed(n), poll=0.02)
    return (n - start) / (time.perf_counter() - t0)


def publisher_process(port: int, messages_file: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, __file__, "--publisher", str(port), str(messages_file)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def run_publisher(port: int, messages_file: Path) -> None:
    """Child process of ``live``: load the messages, say ready, publish on a line from the parent."""
    messages = [(t, p.encode()) for t, p in orjson.loads(messages_file.read_bytes())]
    print("ready", flush=True)
    sys.stdin.readline()
    elapsed = publish(port, messages)
    print(json.dumps({"seconds": elapsed}), flush=True)


def mode_live(messages: list[tuple[str, bytes]], values: int, runs: int, inflight: int) -> dict[str, float]:
    n = len(messages)
    bare_rates, ingest_rates, ratios, pub_rates = [], [], [], []
    for run in range(runs):
        got: dict[str, float] = {}
        with tempfile.TemporaryDirectory() as tmp:
            file = Path(tmp) / "messages.json"
            file.write_bytes(orjson.dumps([(t, p.decode()) for t, p in messages]))
            for kind in ("bare", "ingest"):
                with broker(Path(tmp), inflight) as b:
                    pub = publisher_process(b.port, file)
                    assert pub.stdout is not None and pub.stdin is not None
                    if pub.stdout.readline().strip() != "ready":
                        raise RuntimeError("publisher failed to start")
                    if kind == "bare":
                        sub = BareSubscriber(b.port, cid("bare"), subscribe=True)
                        sub.start()
                        if not sub.subscribed.wait(10):
                            raise RuntimeError("bare subscriber did not subscribe")
                        done = lambda sub=sub: sub.count >= n  # noqa: E731
                    else:
                        settings = load(common.CONFIG, env={}, overrides={
                            "store.data_dir": str(Path(tmp) / "data"), "mqtt.url": b.url,
                            "mqtt.client_id": cid("ingest")})
                        ctx = context()
                        store = SqliteStore.from_settings(settings)
                        ingest = connect(settings, PayloadDecoder(ctx.registry, ctx.catalogue), store)
                        ingest.start()
                        if not ingest.wait_subscribed(10):
                            raise RuntimeError("ingest did not subscribe")
                        done = lambda ingest=ingest: (ingest.pipeline.stats().received >= n  # noqa: E731
                                                      and ingest.pipeline.stats().pending == 0)
                    t0 = time.perf_counter()
                    pub.stdin.write("go\n")
                    pub.stdin.flush()
                    wait_until(done, poll=0.01)
                    got[kind] = n / (time.perf_counter() - t0)
                    report = json.loads(pub.communicate(timeout=600)[0])
                    pub_rates.append(n / report["seconds"])
                    if kind == "bare":
                        sub.stop()
                    else:
                        ingest.stop()
                        store.close()
                        check_once(store.path, n, values)
        bare_rates.append(got["bare"])
        ingest_rates.append(got["ingest"])
        ratios.append(got["ingest"] / got["bare"])
        print(f"  run {run + 1}: with bare {got['bare']:8,.0f} msg/s   with ingest {got['ingest']:8,.0f} msg/s   "
              f"ratio {ratios[-1]:.2f}", flush=True)
    m = statistics.median
    result = {"bare_msg_s": m(bare_rates), "ingest_msg_s": m(ingest_rates), "ratio": m(ratios),
              "publisher_msg_s": m(pub_rates)}
    print(f"live (publisher running, inflight {inflight}), median of {runs}: end to end with bare "
          f"{result['bare_msg_s']:,.0f} msg/s, with ingest {result['ingest_msg_s']:,.0f} msg/s, "
          f"ratio {result['ratio']:.2f} (publisher alone sends ~{result['publisher_msg_s']:,.0f} msg/s)",
          flush=True)
    return result


def mode_memory(messages: list[tuple[str, bytes]], values: int, inflight: int) -> dict[str, float]:
    n = len(messages)
    with tempfile.TemporaryDirectory() as tmp, broker(Path(tmp), inflight) as b:
        client_id = cid("ingest")
        make_sessions(b.port, [client_id])
        publish(b.port, messages)
        data = Path(tmp) / "data"
        db = data / "nongyun.sqlite3"
        t0 = time.perf_counter()
        proc = common.spawn_ingest(b.port, data, client_id, log=Path(tmp) / "ingest.log")
        rss = common.PeakRss(proc.pid)
        try:
            wait_until(lambda: common.accepted_in(db) >= n, poll=0.05)
            seconds = time.perf_counter() - t0
            peak = rss.stop()
        finally:
            common.stop_process(proc)
        check_once(db, n, values)
    result = {"messages": n, "peak_rss_mib": peak, "msg_s_with_startup": n / seconds}
    print(f"memory: `nongyun ingest` draining {n:,} messages: peak RSS (VmHWM) {peak:.0f} MiB; "
          f"{n / seconds:,.0f} msg/s including process start-up", flush=True)
    return result


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--bare-subscriber":
        run_bare_subscriber(int(sys.argv[2]), sys.argv[3], int(sys.argv[4]))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--publisher":
        run_publisher(int(sys.argv[2]), Path(sys.argv[3]))
        return
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--modes", default="drain,shared,live,memory")
    ap.add_argument("--messages", type=int, default=40_000)
    ap.add_argument("--memory-messages", type=int, default=200_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--inflight", type=int, default=20, help="the broker's max_inflight_messages (Mosquitto: 20)")
    ap.add_argument("--json", type=Path, help="also write the medians here")
    ap.add_argument("--trees", default="", help=(
        "comma-separated copies of the checkout (each with service/ and config/): the drain mode drains "
        "with each one's ingest in the same run (A/B of versions); '.' is this checkout"))
    args = ap.parse_args()
    modes = args.modes.split(",")
    ctx = context()
    messages = common.telemetry(ctx, args.messages)
    values = common.values_in(messages)
    size = sum(len(p) for _, p in messages) / len(messages)
    print(f"{common.machine()}")
    print(f"{len(messages):,} telemetry messages, {size:.0f} bytes and {values / len(messages):.1f} values each "
          f"on average, QoS 1, MQTT 3.1.1; broker max_inflight_messages {args.inflight}", flush=True)
    results: dict[str, dict[str, float]] = {}
    if "drain" in modes and args.trees:
        trees = [ROOT if t == "." else Path(t).resolve() for t in args.trees.split(",")]
        results["compare"] = mode_compare(messages, values, args.runs, args.inflight, trees)
    elif "drain" in modes:
        results["drain"] = mode_drain(messages, values, args.runs, args.inflight)
    if "shared" in modes:
        results["shared"] = mode_shared(messages, values, args.runs, args.inflight)
    if "live" in modes:
        results["live"] = mode_live(messages, values, args.runs, args.inflight)
    if "memory" in modes:
        big = messages if args.memory_messages == len(messages) else common.telemetry(ctx, args.memory_messages)
        results["memory"] = mode_memory(big, common.values_in(big), args.inflight)
    print(f"load after: {common.machine().split('; ')[1]}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
