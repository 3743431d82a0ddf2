"""The web server of ``serve``, ``web`` and ``demo`` under slow and idle clients (service/process.py).

Werkzeug's development server gave every connection a thread of its own for as long as the client
held it; waitress reads requests in one event loop, so held connections cost sockets only.
"""

from __future__ import annotations

import socket
import threading
import time
import urllib.request
from collections.abc import Iterator

import pytest
from flask import Flask, request

from service.process import WebServer


@pytest.fixture
def served(app: Flask) -> Iterator[WebServer]:
    server = WebServer(app, "127.0.0.1", 0)
    yield server
    server.shutdown()


def test_fifty_half_sent_requests_hold_no_thread_and_do_not_delay_a_normal_one(served: WebServer) -> None:
    held = []
    threads_before = threading.active_count()
    try:
        for _ in range(50):
            s = socket.create_connection(("127.0.0.1", served.port), timeout=5)
            s.sendall(b"GET /api/v1/openapi.json HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")  # never finished
            held.append(s)
        time.sleep(0.2)  # let the server accept them all
        assert threading.active_count() == threads_before  # sockets, not threads
        began = time.monotonic()
        with urllib.request.urlopen(f"http://127.0.0.1:{served.port}/api/v1/openapi.json", timeout=5) as resp:
            assert resp.status == 200
        assert time.monotonic() - began < 1.0
    finally:
        for s in held:
            s.close()


def test_shutdown_closes_the_listening_socket(app: Flask) -> None:
    server = WebServer(app, "127.0.0.1", 0)
    port = server.port
    server.shutdown()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_behind_a_proxy_the_forwarded_headers_reach_the_app(app: Flask) -> None:
    seen: list[str] = []

    @app.get("/test-forwarded")
    def forwarded() -> str:
        seen.append(request.headers.get("X-Forwarded-For", ""))
        return "ok"

    for behind, expected in ((True, "203.0.113.9"), (False, "")):
        server = WebServer(app, "127.0.0.1", 0, behind_proxy=behind)
        try:
            req = urllib.request.Request(f"http://127.0.0.1:{server.port}/test-forwarded",
                                         headers={"X-Forwarded-For": "203.0.113.9"})
            with urllib.request.urlopen(req, timeout=5) as resp:
                assert resp.status == 200
        finally:
            server.shutdown()
        assert seen[-1] == expected
