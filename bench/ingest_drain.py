"""How fast a queued backlog drains: nongyun's ingest into SqliteStore vs a bare paho QoS 1 subscriber.

Why: ingest acknowledges only after commit, so the broker never has more than its
``max_inflight_messages`` unacknowledged messages out to us; if batches waited to fill, throughput
would collapse to window / flush time. This measures the drain rate for several window sizes.

    python bench/ingest_drain.py [--messages 20000] [--inflight 20,100,1000] [--runs 1]

Each run starts a private Mosquitto on a free loopback port, creates the persistent session,
publishes the backlog with QoS 1 while the consumer is away, then times the consumer's drain.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from service.context import build
from service.ingest import connect
from service.payloads import PayloadDecoder
from service.settings import load
from service.store.sqlite import SqliteStore
from service.times import now_ms
from tests.brokers import free_port, wait_port

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
CONFIG = Path(__file__).resolve().parent.parent / "config"


class Broker:
    def __init__(self, workdir: Path, inflight: int) -> None:
        self.port = free_port()
        conf = workdir / "mosquitto.conf"
        conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 0\n"
                        f"max_inflight_messages {inflight}\npersistence false\n")
        self.log = open(workdir / "mosquitto.log", "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stdout=self.log, stderr=self.log)
        wait_port(self.port)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        self.log.close()


def backlog(n: int, stations: list[str]) -> list[tuple[str, bytes]]:
    """~190-byte readings of six metrics, as MEASUREMENTS.md used; distinct points."""
    start = now_ms() - n * 1000
    out = []
    for i in range(n):
        body = {"ts": start + i * 1000, "readings": {
            "soil_moisture": 23.4 + i % 7, "soil_temp": 12.1, "air_temp": 8.3 + i % 5,
            "air_humidity": 64.0, "rainfall": 0.0, "battery": 3.71}}
        out.append((f"nongyun/v1/{stations[i % len(stations)]}/telemetry", orjson.dumps(body)))
    return out


def make_session(port: int, client_id: str) -> None:
    """Create the persistent session (and its subscriptions), then leave."""
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False,
                    protocol=MQTTProtocolVersion.MQTTv311)
    done = threading.Event()
    c.on_subscribe = lambda *a: done.set()
    c.connect("127.0.0.1", port)
    c.loop_start()
    c.subscribe([("nongyun/v1/+/telemetry", 1), ("nongyun/v1/+/yield", 1), ("nongyun/v1/+/status", 1)])
    assert done.wait(10)
    c.disconnect()
    c.loop_stop()


def publish(port: int, messages: list[tuple[str, bytes]]) -> None:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{uuid.uuid4().hex[:6]}")
    c.max_inflight_messages_set(100)
    c.max_queued_messages_set(0)
    c.connect("127.0.0.1", port)
    c.loop_start()
    infos = []
    for topic, body in messages:
        info = c.publish(topic, body, qos=1)
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            raise RuntimeError(mqtt.error_string(info.rc))
        infos.append(info)
    for info in infos:
        info.wait_for_publish(60)
    c.disconnect()
    c.loop_stop()


def timed(until: Callable[[], bool], timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not until():
        if time.monotonic() > deadline:
            raise TimeoutError("drain did not finish")
        time.sleep(0.002)


def drain_bare(port: int, client_id: str, n: int) -> tuple[float, float]:
    """A paho QoS 1 subscriber (auto-ack) that only counts: the ceiling for any Python consumer."""
    count = [0]
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False,
                    protocol=MQTTProtocolVersion.MQTTv311)

    def on_message(client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        count[0] += 1

    c.on_message = on_message
    t0, cpu0 = time.perf_counter(), time.process_time()
    c.connect("127.0.0.1", port)
    c.loop_start()
    timed(lambda: count[0] >= n)
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    c.disconnect()
    c.loop_stop()
    return elapsed, cpu


def drain_ingest(port: int, client_id: str, n: int, workdir: Path) -> tuple[float, float, int]:
    settings = load(CONFIG, env={}, overrides={"store.data_dir": str(workdir / "data"),
                                               "mqtt.url": f"mqtt://127.0.0.1:{port}",
                                               "mqtt.client_id": client_id})
    ctx = build(settings)
    store = SqliteStore.from_settings(settings)
    ingest = connect(settings, PayloadDecoder(ctx.registry, ctx.catalogue), store)
    t0, cpu0 = time.perf_counter(), time.process_time()
    ingest.start()

    def done() -> bool:
        s = ingest.pipeline.stats()
        return s.accepted >= n and s.pending == 0

    timed(done)
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    ingest.stop()
    stored = store.counters().accepted
    store.close()
    return elapsed, cpu, stored


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--messages", type=int, default=20_000)
    ap.add_argument("--inflight", default="20,100,1000", help="broker max_inflight_messages values")
    ap.add_argument("--runs", type=int, default=1)
    args = ap.parse_args()
    settings = load(CONFIG, env={})
    stations = [d.id for d in build(settings).registry if d.kind == "station"]
    messages = backlog(args.messages, stations)
    print(f"{args.messages} telemetry messages of ~{len(messages[0][1])} bytes, QoS 1, MQTT 3.1.1")
    print(f"{'consumer':<22}{'inflight':>9}{'msg/s':>10}{'CPU µs/msg':>12}")
    for inflight in [int(x) for x in args.inflight.split(",")]:
        for name in ("bare paho (auto-ack)", "nongyun ingest+sqlite"):
            rates, cpus = [], []
            for _ in range(args.runs):
                with tempfile.TemporaryDirectory() as tmp:
                    broker = Broker(Path(tmp), inflight)
                    try:
                        cid = f"bench-{uuid.uuid4().hex[:8]}"
                        make_session(broker.port, cid)
                        publish(broker.port, messages)
                        if name.startswith("bare"):
                            elapsed, cpu = drain_bare(broker.port, cid, args.messages)
                        else:
                            elapsed, cpu, stored = drain_ingest(broker.port, cid, args.messages, Path(tmp))
                            assert stored == args.messages, (stored, args.messages)
                    finally:
                        broker.stop()
                rates.append(args.messages / elapsed)
                cpus.append(cpu / args.messages * 1e6)
            print(f"{name:<22}{inflight:>9}{statistics.median(rates):>10,.0f}{statistics.median(cpus):>12.0f}",
                  flush=True)


if __name__ == "__main__":
    main()
