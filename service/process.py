"""Process assembly: how a nongyun process starts its parts and stops them on a signal.

``nongyun serve``, ``ingest``, ``web``, ``jobs`` and ``demo`` all build the same context, open
the same store and start ingest, jobs and the web server the same way, so one place holds it
(``cli`` and ``demo`` both import it; neither imports the other). Imports stay local: a web-only
process never imports paho, an ingest worker never imports Flask.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from .context import Context
    from .store.base import Store

log = logging.getLogger("nongyun")


def context() -> Context:
    """The settings and config in force, validated, with logging set to their level."""
    from .context import build

    ctx = build()
    logging.basicConfig(level=ctx.settings.values.log_level,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return ctx


def open_store(ctx: Context) -> Store:
    from .store import open_store as open_configured

    return open_configured(ctx.settings)


@contextmanager
def until_signal() -> Iterator[threading.Event]:
    """An event set by SIGINT/SIGTERM, so every command shuts down the same orderly way."""
    stop = threading.Event()

    def handler(signum: int, frame: Any) -> None:
        stop.set()

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def start_ingest(ctx: Context, store: Store) -> Any:
    from .ingest import connect
    from .payloads import PayloadDecoder

    decoder = PayloadDecoder(ctx.registry, ctx.catalogue, ctx.land, ctx.tree)
    follow_registry_changes(ctx, decoder)
    ingest = connect(ctx.settings, decoder, store)
    ingest.start()
    return ingest


def follow_registry_changes(ctx: Context, decoder: Any = None) -> None:
    """Poll the run-time registry changes (registry_changes.py) in this process, and hand new
    registries to ``decoder`` (a PayloadDecoder) too; every serving process calls this."""
    if ctx.live is None:
        return
    if decoder is not None:
        ctx.live.follow(decoder)
    ctx.live.start()


def start_jobs(ctx: Context, store: Store) -> Any | None:
    from .jobs import start_jobs as start
    from .store.base import as_jobs_store

    follow_registry_changes(ctx)
    jobs_store = as_jobs_store(store)
    if jobs_store is None:
        log.warning("the %s store keeps no rollups or alerts: scheduled jobs are off", store.name)
        return None
    return start(ctx, jobs_store)


def warn_missing_assets() -> None:
    from .web.assets import missing_warning

    warning = missing_warning()
    if warning:
        click.secho(warning, fg="yellow", err=True)


# waitress: one event loop reads requests whole before a worker thread sees them, so a client that
# sends half a request, or holds a connection idle, costs a socket, never a thread; idle and slow
# connections are closed after CHANNEL_TIMEOUT_S and at most CONNECTION_LIMIT are open at once.
WEB_THREADS = 8
CONNECTION_LIMIT = 200
CHANNEL_TIMEOUT_S = 30


class WebServer:
    """The web app under waitress in a background thread; ``shutdown()`` closes every connection."""

    def __init__(self, app: Any, host: str, port: int, *, behind_proxy: bool = False) -> None:
        from waitress.server import create_server

        # waitress drops X-Forwarded-* unless told to keep them; behind proxies (web.proxy_hops > 0)
        # the app's ProxyFix needs them to see the client's address and scheme.
        self._server: Any = create_server(
            app, host=host, port=port, threads=WEB_THREADS, connection_limit=CONNECTION_LIMIT,
            channel_timeout=CHANNEL_TIMEOUT_S, cleanup_interval=5, asyncore_use_poll=True, ident="nongyun",
            expose_tracebacks=False, max_request_body_size=1 << 20,
            clear_untrusted_proxy_headers=not behind_proxy)
        self.port = int(self._server.effective_port)
        self._thread = threading.Thread(target=self._server.run, name="web", daemon=True)
        self._thread.start()

    def shutdown(self) -> None:
        from waitress import wasyncore

        self._server.task_dispatcher.shutdown()
        wasyncore.close_all(self._server._map)
        self._thread.join(timeout=10)


def web_server(ctx: Context, store: Store, host: str, port: int, ingest: Any = None) -> WebServer:
    from .web import create_app
    from .web.metrics import register_ingest

    app = create_app(ctx, store)
    follow_registry_changes(ctx, app.extensions["nongyun"].decoder)
    if ingest is not None:  # its live state in /metrics and /api/v1/health
        register_ingest(app, ingest)  # stats() and link_health()
    return WebServer(app, host, port, behind_proxy=ctx.settings.values.web_proxy_hops > 0)


def start_all(ctx: Context, store: Store, stack: ExitStack) -> Any:
    """Ingest, jobs and the web server of one process, each stopped by ``stack`` in reverse order;
    returns the ingest worker. Shared by ``serve`` and ``demo``."""
    host, port = ctx.settings.http
    warn_missing_assets()
    ingest = start_ingest(ctx, store)
    stack.callback(ingest.stop)
    jobs = start_jobs(ctx, store)
    if jobs is not None:
        stack.callback(jobs.shutdown)
    server = web_server(ctx, store, host, port, ingest)
    stack.callback(server.shutdown)
    return ingest
