"""The PUBACK bytes ingest writes through paho's private ``_packet_queue``, read off a real socket.

``send_pubacks`` relies on a paho-mqtt internal (pyproject.toml bounds paho for it). If an upgrade
changes that internal, this test fails instead of ingest silently acknowledging nothing, or garbage,
while the broker holds every message unacknowledged.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from service.ingest.mqtt import send_pubacks

CONNACK = bytes([0x20, 0x02, 0x00, 0x00])  # session not present, accepted


def _read_packet(conn: socket.socket) -> bytes:
    """One MQTT control packet: fixed header byte, variable-length remaining length, body."""
    head = conn.recv(1)
    length, shift = 0, 0
    while True:
        byte = conn.recv(1)[0]
        length |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            break
    body = b""
    while len(body) < length:
        body += conn.recv(length - len(body))
    return head + body


def _read_exactly(conn: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            break
        data += chunk
    return data


@pytest.fixture
def peer() -> Iterator[tuple[int, list[socket.socket]]]:
    """A loopback listener that answers one CONNECT with a CONNACK: the broker's side of the wire."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(10)
    accepted: list[socket.socket] = []

    def serve() -> None:
        conn, _ = server.accept()
        conn.settimeout(10)
        assert _read_packet(conn)[0] >> 4 == 1  # CONNECT
        conn.sendall(CONNACK)
        accepted.append(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], accepted
    thread.join(timeout=10)
    for conn in accepted:
        conn.close()
    server.close()


def test_send_pubacks_writes_one_puback_per_mid_in_order(peer: tuple[int, list[socket.socket]]) -> None:
    port, accepted = peer
    connected = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="pubacks", clean_session=False,
                         protocol=MQTTProtocolVersion.MQTTv311, manual_ack=True)
    client.on_connect = lambda *_args: connected.set()
    client.connect("127.0.0.1", port, keepalive=60)
    client.loop_start()
    try:
        assert connected.wait(10), "paho never saw the CONNACK"
        assert hasattr(client, "_packet_queue"), "paho no longer has _packet_queue: ingest falls back to one ack each"
        mids = [1, 2, 0x1234, 0xFFFF, 300]
        send_pubacks(client, mids)
        wire = _read_exactly(accepted[0], 4 * len(mids))
    finally:
        client.disconnect()
        client.loop_stop()
    expected = b"".join(bytes([0x40, 0x02, mid >> 8, mid & 0xFF]) for mid in mids)
    assert wire.hex(" ") == expected.hex(" ")
