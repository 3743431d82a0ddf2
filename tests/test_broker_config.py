"""``nongyun broker-config`` against a real Mosquitto started with the files it writes: a device
publishes only as itself, unknown and anonymous clients are refused, its own data flows."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from service import broker_config as bc
from service.auth import SqliteAccounts
from service.cli import main
from service.context import Context
from tests.brokers import Mosquitto
from tests.conftest import CONFIG

A, B = "qh-st-101200-1", "qh-st-102200-1"
SERVICE_PASSWORD = "service-secret-123"
MOSQUITTO_PASSWD = "/usr/bin/mosquitto_passwd"


def test_hashes_match_mosquitto_passwd(tmp_path: Path) -> None:
    """Our $7$ hash verifies a password file line written by mosquitto_passwd, and the other way round."""
    path = tmp_path / "pw"
    subprocess.run([MOSQUITTO_PASSWD, "-b", "-c", str(path), "dev", "s3cret-pass"], check=True)
    stored = bc.parse_passwd(path.read_text())["dev"]
    assert stored.startswith("$7$") and bc.verify_mosquitto_hash(stored, "s3cret-pass")
    assert not bc.verify_mosquitto_hash(stored, "s3cret-pasS")
    _, _, iterations, salt, _ = stored.split("$")
    import base64

    assert bc.mosquitto_hash("s3cret-pass", base64.b64decode(salt), int(iterations)) == stored


@given(st.text(min_size=1, max_size=40))
def test_hash_round_trip(password: str) -> None:
    h = bc.mosquitto_hash(password, iterations=2)
    assert bc.verify_mosquitto_hash(h, password) and not bc.verify_mosquitto_hash(h, password + "x")


@dataclass
class Conn:
    client: mqtt.Client
    connected: threading.Event = field(default_factory=threading.Event)
    refused: threading.Event = field(default_factory=threading.Event)
    messages: list[tuple[str, bytes]] = field(default_factory=list)
    subacks: list[Any] = field(default_factory=list)
    acked: threading.Event = field(default_factory=threading.Event)
    dropped: threading.Event = field(default_factory=threading.Event)


def _connect(port: int, user: str | None, password: str | None, cid: str) -> Conn:
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=cid)
    conn = Conn(c)
    if user is not None:
        c.username_pw_set(user, password)

    def on_connect(client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        (conn.refused if rc.is_failure else conn.connected).set()

    def on_message(client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        conn.messages.append((msg.topic, msg.payload))

    def on_subscribe(client: mqtt.Client, userdata: Any, mid: int, codes: Any, props: Any) -> None:
        conn.subacks.extend(codes)
        conn.acked.set()

    def on_disconnect(client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        conn.dropped.set()

    c.on_connect, c.on_message, c.on_subscribe = on_connect, on_message, on_subscribe
    c.on_disconnect = on_disconnect
    c.reconnect_delay_set(60, 120)  # a refused client must not retry during the test
    c.connect("127.0.0.1", port)
    c.loop_start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not (conn.connected.is_set() or conn.refused.is_set()):
        time.sleep(0.01)
    return conn


def _stop(conn: Conn) -> None:
    conn.client.disconnect()
    conn.client.loop_stop()


@pytest.fixture
def secured(ctx: Context, tmp_path: Path) -> Iterator[tuple[Mosquitto, dict[str, str]]]:
    """Mosquitto with the generated files; the service account's entry written by mosquitto_passwd
    first (as compose's mosquitto-auth step does) and kept by broker-config."""
    auth = tmp_path / "auth"
    auth.mkdir()
    subprocess.run([MOSQUITTO_PASSWD, "-b", "-c", str(auth / "passwd"), "nongyun", SERVICE_PASSWORD], check=True)
    env = {"NONGYUN_CONFIG": str(CONFIG), "NONGYUN_DATA_DIR": str(ctx.settings.data_dir)}
    result = CliRunner().invoke(main, ["broker-config", "--out", str(auth)], env=env)
    assert result.exit_code == 0, result.output
    creds = dict(line.split("\t") for line in result.stdout.splitlines() if "\t" in line)
    # every device, plus one user per ingest worker and the jobs runner (service users: issued once)
    assert set(creds) == {d.id for d in ctx.registry} | {"nongyun-ingest", "nongyun-jobs"}
    broker = Mosquitto(tmp_path / "broker", extra_conf="\n".join([
        "allow_anonymous false", f"password_file {auth / 'passwd'}", f"acl_file {auth / 'acl'}"]), persistence=False)
    broker.start()
    try:
        yield broker, creds
    finally:
        broker.stop()


def test_a_device_publishes_only_as_itself_and_strangers_are_refused(
        secured: tuple[Mosquitto, dict[str, str]]) -> None:
    broker, creds = secured
    service = _connect(broker.port, "nongyun", SERVICE_PASSWORD, "svc")
    assert service.connected.is_set()
    service.client.subscribe("nongyun/v1/#", qos=1)
    assert service.acked.wait(5) and not any(code.is_failure for code in service.subacks)
    forger = _connect(broker.port, A, creds[A], f"{A}-forger")
    assert forger.connected.is_set()
    # as B: Mosquitto drops it (2.0.11 closes the connection, later versions acknowledge and drop)
    sent = forger.client.publish(f"nongyun/v1/{B}/telemetry", b'{"forged": true}', qos=1)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not (sent.is_published() or forger.dropped.is_set()):
        time.sleep(0.01)
    assert sent.is_published() or forger.dropped.is_set()
    _stop(forger)
    a = _connect(broker.port, A, creds[A], A)
    try:
        assert a.connected.is_set()
        a.client.publish(f"nongyun/v1/{A}/telemetry", b'{"own": true}', qos=1).wait_for_publish(5)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not service.messages:
            time.sleep(0.01)
        # A's own message came; the forged one, handled by the broker before A reconnected, did not
        assert service.messages == [(f"nongyun/v1/{A}/telemetry", b'{"own": true}')]
        # a device reads nothing: Mosquitto grants the subscription but delivers no message to it
        a.client.subscribe("nongyun/v1/#", qos=1)
        assert a.acked.wait(5)
        b = _connect(broker.port, B, creds[B], B)
        b.client.publish(f"nongyun/v1/{B}/status", b"online", qos=1).wait_for_publish(5)
        service.client.publish("nongyun/v1/alerts/211204", b"[]", qos=1).wait_for_publish(5)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and len(service.messages) < 3:
            time.sleep(0.01)
        assert [t for t, _ in service.messages[1:]] == [f"nongyun/v1/{B}/status", "nongyun/v1/alerts/211204"]
        # a PUBACK to A comes after anything the broker queued for A before it
        a.client.publish(f"nongyun/v1/{A}/status", b"online", qos=1).wait_for_publish(5)
        assert a.messages == []
        _stop(b)
    finally:
        _stop(a)
        _stop(service)
    for user, password in ((None, None), ("nobody", "whatever"), (A, creds[B]), (A, "")):
        stranger = _connect(broker.port, user, password, f"x-{user}")
        try:
            assert stranger.refused.is_set() and not stranger.connected.is_set(), user
        finally:
            _stop(stranger)


def test_running_again_keeps_credentials_and_foreign_entries_and_rotates_on_request(
        ctx: Context, tmp_path: Path) -> None:
    store = SqliteAccounts.in_dir(ctx.settings.data_dir)
    out = tmp_path / "auth"
    out.mkdir()
    (out / "passwd").write_text(f"nongyun:{bc.mosquitto_hash('svc-pass-123')}\n")
    first, passwd, acl = bc.write(out, ctx.registry, store, "nongyun", 1)
    lines = bc.parse_passwd(passwd.read_text())
    assert set(lines) == {d.id for d in ctx.registry} | {"nongyun"}
    assert bc.verify_mosquitto_hash(lines[A], first.new_credentials[A])
    assert first.new_credentials[A] not in passwd.read_text() and first.new_credentials[A] not in acl.read_text()
    again, _, _ = bc.write(out, ctx.registry, store, "nongyun", 2)
    assert again.new_credentials == {} and bc.parse_passwd(passwd.read_text()) == lines
    rotated, _, _ = bc.write(out, ctx.registry, store, "nongyun", 3, rotate=frozenset({A}))
    assert set(rotated.new_credentials) == {A}
    assert not bc.verify_mosquitto_hash(bc.parse_passwd(passwd.read_text())[A], first.new_credentials[A])
    text = acl.read_text()
    assert f"user {A}\ntopic write nongyun/v1/{A}/telemetry" in text
    assert f"topic write nongyun/v1/{B}/" not in text.split(f"user {A}\n")[1].split("\nuser ")[0]
    assert oct(passwd.stat().st_mode & 0o777) == "0o600"


def test_a_device_removed_from_the_registry_loses_its_entry(ctx: Context, tmp_path: Path) -> None:
    from service.registry import Registry

    store = SqliteAccounts.in_dir(ctx.settings.data_dir)
    bc.write(tmp_path, ctx.registry, store, "nongyun", 1)
    fewer = Registry([d for d in ctx.registry if d.id != B])
    files, passwd, acl = bc.write(tmp_path, fewer, store, "nongyun", 2)
    assert files.removed == [B] and B not in bc.parse_passwd(passwd.read_text())
    assert f"user {B}\n" not in acl.read_text()
    assert B not in store.device_credentials()
