"""One JSON error body for every failure of the API: ``{"error": {"code", "message", "field"?}}``.

Werkzeug's HTTP exceptions (404 unknown path, 405 wrong method, 413 oversized body...) and our own
error tree (``service.errors``) are mapped here, in one place, so no view formats an error itself
and nothing else — tracebacks included — can reach a client. A browser asking for a page (a path
outside ``/api/`` that does not ask for JSON) gets the same failure as an HTML page in the site's
frame instead (``templates/pages/error.html``): the header of every page, the text in the page's
language, and a link to the caller's own scope page, since a village clerk who opened the township
page has nowhere else to go. API errors stay JSON.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, g, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from ..errors import BadInput, Conflict, Forbidden, NotFound, StoreRejected, StoreUnavailable
from .i18n import pick_lang, strings

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


def _wants_page() -> bool:
    """A browser opening a page: it names text/html in Accept (every browser does for a page, no
    script or fetch does). The API, ``.json`` data of the pages and ``/metrics`` keep their JSON."""
    path = request.path
    if path.startswith("/api/") or path.endswith(".json") or path == "/metrics":
        return False
    return any(value == "text/html" and quality > 0 for value, quality in request.accept_mimetypes)


# status → (title, explanation) in zh and en; a status missing here reads as the nearest class
PAGE_TEXT: dict[int, tuple[tuple[str, str], tuple[str, str]]] = {
    400: (("请求有误", "Bad request"), ("页面地址中的参数无效。", "A parameter in the page address is not valid.")),
    401: (("需要登录", "Login needed"), ("请先登录再打开此页面。", "Log in first to open this page.")),
    403: (("无权访问", "Access denied"), ("此页面不在您账号的管辖范围内。",
                                         "This page lies outside your account's scope.")),
    404: (("页面不存在", "Not found"), ("找不到该地区、设备或页面，可能地址有误。",
                                       "No such region, device or page: the address may be wrong.")),
    405: (("操作不允许", "Not allowed"), ("此页面不支持该操作。", "This page does not take that action.")),
    500: (("系统出错", "Server error"), ("服务器处理时出错，已记录在日志中，请稍后再试。",
                                        "The server failed on this request; it is in the log. Try again later.")),
    503: (("暂时不可用", "Unavailable"), ("数据存储暂时不可用，请稍后再试。",
                                         "The store is unavailable for now; try again later.")),
}
LINK_TEXT = {"scope": ("返回我的主页", "Back to my page"), "login": ("去登录", "Log in")}


def _page_text(status: int) -> tuple[tuple[str, str], tuple[str, str]]:
    return PAGE_TEXT.get(status) or PAGE_TEXT[500 if status >= 500 else 400]


def error_page(status: int, **headers: str) -> Response:
    """The failure as a page in the site's frame, in the page's language (``?lang=``, then the
    cookie), linking to the caller's scope page (``/r/<scope>``), or to the login when nobody is
    logged in. If rendering fails too (a broken template, no pages installed), a bare page."""
    lang = pick_lang(request.args.get("lang"), request.cookies.get("nongyun_lang"))
    i = 0 if lang == "zh" else 1
    title, text = (pair[i] for pair in _page_text(status))
    who = g.get("principal")
    scope = getattr(who, "scope", None)
    link = (f"/r/{scope}", LINK_TEXT["scope"][i]) if scope and status != 401 else ("/login", LINK_TEXT["login"][i])
    try:
        html = render_template("pages/error.html", t=strings(lang), lang=lang, tier="error", title=title,
                               text=text, status=status, link={"href": link[0], "text": link[1]}, crumbs=[],
                               subtitle=str(status), page={"tier": "error", "lang": lang},
                               charts_available=True)
    except Exception:  # the error page must not become a second failure
        log.exception("error page %d could not be rendered", status)
        html = f'<!doctype html><meta charset="utf-8"><title>{status}</title><h1>{status} {title}</h1>' \
               f'<p>{text}</p><p><a href="{link[0]}">{link[1]}</a></p>'
    resp = Response(html, status=status, mimetype="text/html")
    for name, value in headers.items():
        resp.headers[name.replace("_", "-")] = value
    return resp


def _http(exc: HTTPException) -> Response | HTTPException:
    status = exc.code or 500
    if _wants_page():
        keep = {k.replace("-", "_"): v for k, v in exc.get_headers() if k.lower() in ("allow", "retry-after")}
        return error_page(status, **keep)
    if not _wants_json():
        return exc  # a script or asset fetched outside /api/: Werkzeug's short answer, its description kept
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
    if _wants_page():
        return error_page(400)
    return error_response(400, str(exc), exc.field, code=exc.code)


def _conflict(exc: Conflict) -> Response:
    return error_response(409, str(exc), code=exc.code, id=exc.id)


def _not_found(exc: NotFound) -> Response:
    if _wants_page():
        return error_page(404)
    return error_response(404, str(exc))


def _forbidden(exc: Forbidden) -> Response:
    if _wants_page():
        return error_page(403)
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
    if _wants_page():
        return error_page(500)
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
