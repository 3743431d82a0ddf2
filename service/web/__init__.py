"""The Flask web app: the REST API (``api``) and, when present, the dashboards (``pages``).

``create_app`` only wires views to an already built context and store; it never starts ingest or
jobs, because gunicorn runs several web workers and those must run once. For gunicorn:
``gunicorn 'service.web:wsgi_app()'`` (settings from the environment and ``config/``).
"""

from __future__ import annotations

import atexit
import importlib
import logging
from urllib.parse import urlsplit

from flask import Blueprint, Flask, Response, request
from flask.json.provider import DefaultJSONProvider
from werkzeug.middleware.proxy_fix import ProxyFix

from ..context import Context, build
from ..ledger_files import MAX_FILE_BYTES
from ..queries.health import BrokerProbe, broker_probe_for
from ..settings import Settings, load
from ..store import Store, open_store
from . import auth, errors
from .api import bp as api_bp
from .api.imports import yields_import
from .metrics import bp as metrics_bp
from .state import EXTENSION, WebState

__all__ = ["create_app", "create_app_from_settings", "wsgi_app"]

MAX_BODY_BYTES = 64 * 1024  # the MQTT contract's payload limit applies to staff records too
# Scripts, styles and charts come only from this app (ECharts is served from static/vendor); the
# auth pages' small <style> block and ECharts' element styles need inline styles, nothing needs
# inline script. No page may be framed (clickjacking a clerk's harvest form).
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'; object-src 'none'")
log = logging.getLogger(__name__)


def _pages_blueprint() -> Blueprint | None:
    """The dashboards' blueprint, when ``service/web/pages/`` is installed beside the API."""
    try:
        pages = importlib.import_module(f"{__name__}.pages")
    except ModuleNotFoundError as exc:
        if exc.name != f"{__name__}.pages":
            raise
        return None
    found = getattr(pages, "bp", None)
    return found if isinstance(found, Blueprint) else None


# Endpoints whose bodies may be larger than MAX_BODY_BYTES: a harvest ledger upload (the file plus
# its multipart framing). Decided by the matched endpoint before anything reads the body, the CSRF
# check included (it reads the form).
LARGE_BODIES = {f"{api_bp.name}.{yields_import.__name__}": MAX_FILE_BYTES + 64 * 1024}


def _body_limit() -> None:
    found = LARGE_BODIES.get(request.endpoint or "")
    if found is not None:
        request.max_content_length = found


def create_app(ctx: Context, store: Store, *, broker_probe: BrokerProbe | None = None) -> Flask:
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    if isinstance(app.json, DefaultJSONProvider):
        app.json.ensure_ascii = False  # 清河区, not \u6e05\u6cb3\u533a
        app.json.sort_keys = False  # keys in the order of the answer models
    app.extensions[EXTENSION] = WebState(ctx, store, broker_probe or broker_probe_for(ctx.settings))
    # No routing redirect: merging '//' into '/' would answer with an absolute Location built from
    # the request's Host header (an open redirect under a forged Host); such paths are simply 404.
    app.url_map.merge_slashes = False
    app.after_request(_security_headers)
    errors.register(app)
    app.before_request(_body_limit)  # before auth's hook, whose CSRF check reads the body
    auth.init_app(app, ctx)  # before the views: every request is authenticated first
    app.register_blueprint(api_bp)
    app.register_blueprint(metrics_bp)
    pages = _pages_blueprint()
    if pages is not None:
        app.register_blueprint(pages)
    hops = ctx.settings.values.web_proxy_hops
    if hops > 0:
        # Behind N proxies the peer is the nearest proxy: take the client address (login throttle)
        # and the scheme (https: secure cookies, CSRF's referrer check) from the last N forwarded
        # entries, which those proxies wrote; entries further left are the client's own claims.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]
    return app


def _security_headers(resp: Response) -> Response:
    resp.headers.setdefault("Content-Security-Policy", CSP)
    resp.headers.setdefault("X-Frame-Options", "DENY")
    resp.headers.setdefault("X-Content-Type-Options", "nosniff")
    resp.headers.setdefault("Referrer-Policy", "same-origin")
    if request.path.startswith("/api/") or resp.mimetype == "application/json":
        resp.headers["Cache-Control"] = "no-store"  # scoped answers: no shared or browser cache keeps them
    location = resp.headers.get("Location")
    if location and urlsplit(location).netloc:  # every redirect of ours is relative
        resp.headers["Location"] = urlsplit(location)._replace(scheme="", netloc="").geturl() or "/"
    return resp


def create_app_from_settings(settings: Settings) -> Flask:
    """Build the context, open the configured store (closed at exit) and create the app."""
    ctx = build(settings)
    store = open_store(settings)
    atexit.register(store.close)
    app = create_app(ctx, store)
    if ctx.live is not None:  # a gunicorn worker follows run-time registry changes (registry_changes.py)
        ctx.live.follow(app.extensions[EXTENSION].decoder)
        ctx.live.start()
    return app


def wsgi_app() -> Flask:
    """Gunicorn's application factory: settings from ``$NONGYUN_CONFIG`` and the environment."""
    return create_app_from_settings(load())
