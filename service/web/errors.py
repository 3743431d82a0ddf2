"""One JSON error body for every failure of the API: ``{"error": {"code", "message", "field"?}}``.

Werkzeug's HTTP exceptions (404 unknown path, 405 wrong method, 413 oversized body...) and our own
error tree (``service.errors``) are mapped here, in one place, so no view formats an error itself
and nothing else — tracebacks included — can reach a client. Paths outside ``/api/`` (the
dashboards) keep Werkzeug's HTML pages for browsers.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from ..errors import BadInput, Conflict, Forbidden, NotFound, StoreRejected, StoreUnavailable

log = logging.getLogger(__name__)

# HTTP status → the stable error code clients switch on.
CODES: dict[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "unprocessable",
    429: "too_many_requests",
    500: "internal",
    503: "unavailable",
}


def error_response(status: int, message: str, field: str | None = None, *, code: str | None = None,
                   id: str | None = None, **headers: str) -> Response:
    """``code``: a more precise stable code than the status's (``duplicate``, ``unknown_plot``);
    ``id``: the record the error is about (a duplicate's existing record)."""
    body: dict[str, Any] = {"code": code or CODES.get(status, "error"), "message": message}
    if field is not None:
        body["field"] = field
    if id is not None:
        body["id"] = id
    resp = jsonify(error=body)
    resp.status_code = status
    for name, value in headers.items():
        resp.headers[name.replace("_", "-")] = value
    return resp


def _wants_json() -> bool:
    return request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json"


def _http(exc: HTTPException) -> Response | HTTPException:
    if not _wants_json():
        return exc  # Werkzeug's own HTML page for the dashboards' paths
    status = exc.code or 500
    message = exc.description or exc.name
    if status == 404:
        message = f"no such path: {request.path}"
    elif status == 405:
        allowed = exc.valid_methods if hasattr(exc, "valid_methods") else None  # MethodNotAllowed
        message = f"{request.method} is not allowed on {request.path}"
        if allowed:
            message += f" (allowed: {', '.join(sorted(allowed))})"
    resp = error_response(status, message)
    for name, value in exc.get_headers():
        if name.lower() != "content-type":
            resp.headers[name] = value
    return resp


def _bad_input(exc: BadInput) -> Response:
    return error_response(400, str(exc), exc.field, code=exc.code)


def _conflict(exc: Conflict) -> Response:
    return error_response(409, str(exc), code=exc.code, id=exc.id)


def _not_found(exc: NotFound) -> Response:
    return error_response(404, str(exc))


def _forbidden(exc: Forbidden) -> Response:
    return error_response(403, str(exc))


def _store_unavailable(exc: StoreUnavailable) -> Response:
    log.warning("store unavailable: %s", exc)
    retry = exc.retry_after_s
    headers = {"Retry_After": str(max(1, round(retry)))} if retry is not None else {}
    return error_response(503, "the store is unavailable, retry later", **headers)


def _store_rejected(exc: StoreRejected) -> Response:
    return error_response(422, f"the store refused the record: {exc}")


def _unexpected(exc: Exception) -> Response | HTTPException:
    if isinstance(exc, HTTPException):  # raised while handling another error
        return _http(exc)
    log.exception("unhandled error on %s %s", request.method, request.path)
    return error_response(500, "internal error; the server log has the details")


def register(app: Flask) -> None:
    app.register_error_handler(HTTPException, _http)
    app.register_error_handler(BadInput, _bad_input)
    app.register_error_handler(NotFound, _not_found)
    app.register_error_handler(Forbidden, _forbidden)
    app.register_error_handler(Conflict, _conflict)
    app.register_error_handler(StoreUnavailable, _store_unavailable)
    app.register_error_handler(StoreRejected, _store_rejected)
    app.register_error_handler(Exception, _unexpected)
