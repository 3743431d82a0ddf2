"""An in-process MQTT broker for ``nongyun demo``, used only when nothing answers MQTT already.

The demo must run on a machine with only this package installed, so it embeds amqtt (pure Python,
asyncio) in a background thread with its own event loop. Production uses Mosquitto; amqtt is a
convenience with one trap worked around here: its ``AnonymousAuthPlugin`` marks every session
anonymous, and amqtt drops the queued QoS 1 messages and the session of an anonymous client when it
disconnects, which would break ingest's persistent session. ``OpenAuth`` lets every client in
without that mark, so ``clean_session=False`` keeps its backlog as MQTT 3.1.1 says.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from concurrent.futures import Future
from typing import Any

from amqtt.broker import Broker as _AmqttBroker
from amqtt.plugins.base import BaseAuthPlugin

log = logging.getLogger(__name__)

START_TIMEOUT_S = 10.0


class OpenAuth(BaseAuthPlugin):  # type: ignore[misc]  # amqtt ships no type information
    """Accept every client and leave ``is_anonymous`` False so persistent sessions persist."""

    async def authenticate(self, *, session: Any) -> bool:
        return True


def speaks_mqtt(host: str, port: int, timeout: float = 1.0) -> bool:
    """True when host:port answers an MQTT 3.1.1 CONNECT with a CONNACK (a plain TCP check would
    mistake any listener for a broker)."""
    client_id = b"nongyun-probe"
    var_header = b"\x00\x04MQTT\x04\x02\x00\x05"  # protocol name, level 4, clean session, keepalive 5 s
    payload = len(client_id).to_bytes(2, "big") + client_id
    body = var_header + payload
    connect = b"\x10" + bytes([len(body)]) + body
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(connect)
            reply = sock.recv(4)
            if len(reply) >= 2 and reply[0] == 0x20:
                sock.sendall(b"\xe0\x00")  # DISCONNECT
                return True
            return False
    except OSError:
        return False


class Broker:
    """Handle of the in-process broker: ``stop()`` shuts it down and ends its thread."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._loop = asyncio.new_event_loop()
        self._broker: _AmqttBroker | None = None
        self._started: Future[None] = Future()
        self._thread = threading.Thread(target=self._run, name=f"amqtt-{port}", daemon=True)

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def start(self) -> Broker:
        self._thread.start()
        self._started.result(timeout=START_TIMEOUT_S)  # re-raises a failure to bind
        return self

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._start())
        except BaseException as exc:  # handed to the starting thread
            self._started.set_exception(exc)
            self._loop.close()
            return
        self._started.set_result(None)
        self._loop.run_forever()
        self._loop.close()

    async def _start(self) -> None:
        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            # Only our auth plugin: no $SYS publisher, no packet logging on the hot path.
            "plugins": {f"{__name__}.OpenAuth": {}},
        }
        self._broker = _AmqttBroker(config, loop=self._loop)
        await self._broker.start()

    def stop(self, timeout: float = 10.0) -> None:
        if not self._thread.is_alive():
            return
        if self._broker is not None:
            done = asyncio.run_coroutine_threadsafe(self._broker.shutdown(), self._loop)
            try:
                done.result(timeout=timeout)
            except Exception:  # stopping anyway
                log.exception("amqtt shutdown failed")
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=timeout)


def ensure_broker(host: str, port: int) -> Broker | None:
    """None when a broker already answers on host:port (use it); otherwise start one in-process."""
    if speaks_mqtt(host, port):
        log.info("using the MQTT broker at %s:%d", host, port)
        return None
    broker = Broker(host, port).start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while not speaks_mqtt(host, port):
        if time.monotonic() > deadline:
            broker.stop()
            raise RuntimeError(f"the in-process broker on {host}:{port} does not answer MQTT")
        time.sleep(0.05)
    log.info("started an in-process MQTT broker (amqtt) on %s:%d", host, port)
    return broker
