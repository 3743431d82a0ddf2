"""What the benchmarks share: a private Mosquitto, realistic telemetry, sessions, publishing, the machine.

Every benchmark starts its own broker on a free loopback port (never the machine's 1883) and
measures nongyun against a baseline in the same run, because the machine is shared and noisy.
"""

from __future__ import annotations

import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sensors.simulator import District  # noqa: E402
from service.context import Context, build  # noqa: E402
from service.settings import load  # noqa: E402
from service.times import now_ms  # noqa: E402
from tests.brokers import free_port, wait_port  # noqa: E402

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
CONFIG = ROOT / "config"
TOPICS = ("nongyun/v1/+/telemetry", "nongyun/v1/+/yield", "nongyun/v1/+/status")
STEP_MS = 600_000  # stations report every 10 minutes
PUBLISH_WINDOW = 50_000  # messages a publisher has queued and not yet seen acknowledged


def context() -> Context:
    return build(load(CONFIG, env={}))


class Broker:
    """A private Mosquitto: no persistence (its disk writes are not what we measure), unlimited queue."""

    def __init__(self, workdir: Path, inflight: int = 20) -> None:
        self.port = free_port()
        conf = workdir / "mosquitto.conf"
        conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 0\n"
                        f"max_inflight_messages {inflight}\npersistence false\n")
        self.log = open(workdir / "mosquitto.log", "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stdout=self.log, stderr=self.log)
        wait_port(self.port)

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        self.log.close()


@contextmanager
def broker(workdir: Path, inflight: int = 20) -> Iterator[Broker]:
    b = Broker(workdir, inflight)
    try:
        yield b
    finally:
        b.stop()


def telemetry(ctx: Context, n: int, seed: int = 2026) -> list[tuple[str, bytes]]:
    """``n`` one-record telemetry messages of the district's 6–8-metric stations, ~190 bytes each.

    Values come from the simulator's weather model; every message is a distinct point (station,
    10-minute step), the newest a step ago, so each must be stored exactly once. Odd stations send
    RFC 3339 times, even ones epoch ms, and all name themselves in the payload, as field devices do.
    """
    district = District(ctx, seed)
    stations = [d for d in district.stations if len(d.metrics) >= 6]
    tz = ctx.settings.tz
    newest = now_ms() // STEP_MS * STEP_MS - STEP_MS
    steps = -(-n // len(stations))
    pool = 500  # distinct value sets per station, reused with new times: generation stays fast
    out: list[tuple[str, bytes]] = []
    for i in range(n):
        dev = stations[i % len(stations)]
        step = i // len(stations)
        ts = newest - (steps - 1 - step) * STEP_MS
        values = district.readings_at(dev, newest - (step % pool) * STEP_MS)
        stamp: int | str = ts if i % 2 == 0 else datetime.fromtimestamp(ts / 1000, tz).isoformat()
        body = {"device": dev.id, "ts": stamp, "readings": values}
        out.append((f"nongyun/v1/{dev.id}/telemetry", orjson.dumps(body)))
    return out


def values_in(messages: list[tuple[str, bytes]]) -> int:
    return sum(len(orjson.loads(p)["readings"]) for _, p in messages)


def make_sessions(port: int, client_ids: list[str], shared_group: str = "") -> None:
    """Create persistent sessions (and their subscriptions), then leave: the backlog queues for them."""
    topics = [f"$share/{shared_group}/{t}" if shared_group else t for t in TOPICS]
    for client_id in client_ids:
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False,
                        protocol=MQTTProtocolVersion.MQTTv311)
        done = threading.Event()
        c.on_subscribe = lambda *a, done=done: done.set()
        c.connect("127.0.0.1", port)
        c.loop_start()
        c.subscribe([(t, 1) for t in topics])
        if not done.wait(10):
            raise RuntimeError("subscription not granted")
        c.disconnect()
        c.loop_stop()


def publish(port: int, messages: list[tuple[str, bytes]]) -> float:
    """Publish with QoS 1, checking every return code; returns when the broker acknowledged all."""
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{uuid.uuid4().hex[:6]}")
    c.max_inflight_messages_set(100)
    c.max_queued_messages_set(0)
    c.connect("127.0.0.1", port)
    c.loop_start()
    t0 = time.perf_counter()
    infos: deque[mqtt.MQTTMessageInfo] = deque()
    for topic, body in messages:
        if len(infos) >= PUBLISH_WINDOW:  # paho holds at most 65,535 unacknowledged QoS 1 messages
            infos.popleft().wait_for_publish(120)
        info = c.publish(topic, body, qos=1)
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            raise RuntimeError(mqtt.error_string(info.rc))
        infos.append(info)
    for info in infos:
        info.wait_for_publish(120)
    elapsed = time.perf_counter() - t0
    c.disconnect()
    c.loop_stop()
    return elapsed


def wait_until(cond: Callable[[], bool], timeout: float = 600, poll: float = 0.002, what: str = "drain") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not finish within {timeout} s")
        time.sleep(poll)


def store_totals(db: Path) -> tuple[int, int, int]:
    """(raw reading rows, records counted as accepted, messages counted as received) in a store file."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        rows = conn.execute("SELECT COUNT(*) FROM readings").fetchone()[0]
        counters = dict(conn.execute("SELECT name, SUM(value) FROM counters GROUP BY name").fetchall())
    finally:
        conn.close()
    return int(rows), int(counters.get("accepted", 0)), int(counters.get("received", 0))


def accepted_in(db: Path) -> int:
    """Records committed so far, read while writers run (0 before the schema exists)."""
    if not db.exists():
        return 0
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            row = conn.execute("SELECT SUM(value) FROM counters WHERE name = 'accepted'").fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        return 0
    return int(row[0] or 0)


def spawn_ingest(port: int, data_dir: Path, client_id: str, shared_group: str = "",
                 log: Path | None = None) -> subprocess.Popen[bytes]:
    """``python -m service.cli ingest`` configured through the environment, as an operator runs it."""
    env = dict(os.environ, NONGYUN_MQTT_URL=f"mqtt://127.0.0.1:{port}", NONGYUN_DATA_DIR=str(data_dir),
               NONGYUN_MQTT_CLIENT_ID=client_id, NONGYUN_MQTT_SHARED_GROUP=shared_group,
               NONGYUN_CONFIG=str(CONFIG), PYTHONPATH=str(ROOT))
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - the child keeps it
    return subprocess.Popen([sys.executable, "-m", "service.cli", "ingest"], cwd=ROOT, env=env,
                            stdout=out, stderr=out)


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class ProcessCpu:
    """User + system CPU seconds of another process, from /proc/<pid>/stat."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.tick = os.sysconf("SC_CLK_TCK")

    def seconds(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / self.tick


class PeakRss:
    """Samples VmHWM (the kernel's own peak resident set) of a process until stopped; MiB."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            text = Path(f"/proc/{self.pid}/status").read_text()
        except OSError:
            return
        for line in text.splitlines():
            if line.startswith("VmHWM:"):
                self.peak_kib = max(self.peak_kib, int(line.split()[1]))

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self._read()

    def stop(self) -> float:
        self._read()
        self._stop.set()
        self._thread.join()
        return self.peak_kib / 1024


def machine() -> str:
    """One line naming the machine and its load, to print beside every figure."""
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load1, load5, _ = os.getloadavg()
    mosq = subprocess.run([MOSQUITTO, "-h"], capture_output=True, text=True).stdout.split("\n")[0]
    return (f"{cpu}, {os.cpu_count()} cores; load {load1:.1f}/{load5:.1f} (1/5 min); Python "
            f"{platform.python_version()}, SQLite {sqlite3.sqlite_version}, paho-mqtt {mqtt_version()}, "
            f"{mosq.strip() or 'mosquitto'}")


def mqtt_version() -> str:
    from importlib.metadata import version

    return version("paho-mqtt")
