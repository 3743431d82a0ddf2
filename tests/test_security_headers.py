"""Security headers on every answer, no cache for the API's scoped answers, relative redirects only."""

from __future__ import annotations

import pytest
from flask import Flask, redirect
from flask.testing import FlaskClient


@pytest.mark.parametrize("path", ["/", "/r/211204101", "/api/v1/regions", "/api/v1/nope", "/login"])
def test_every_answer_forbids_framing_sniffing_and_foreign_scripts(client: FlaskClient, path: str) -> None:
    resp = client.get(path)
    csp = resp.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-eval" not in csp
    assert resp.headers["X-Frame-Options"] == "DENY"
    assert resp.headers["X-Content-Type-Options"] == "nosniff"


def test_api_answers_are_never_cached(client: FlaskClient) -> None:
    assert client.get("/api/v1/regions").headers["Cache-Control"] == "no-store"
    assert client.get("/api/v1/yields?year=abc").headers["Cache-Control"] == "no-store"  # errors too


@pytest.mark.parametrize("path", ["//evil.example/", "//evil.example/r/211204", "///r/211204", "//r/211204"])
def test_double_slashes_never_redirect_to_another_host(client: FlaskClient, path: str) -> None:
    resp = client.get("/", headers={"Host": "evil.example"}, environ_overrides={"PATH_INFO": path})
    assert resp.status_code < 300 or resp.status_code >= 400
    assert "Location" not in resp.headers


def test_redirects_are_relative_whatever_the_host_header(client: FlaskClient) -> None:
    resp = client.get("/login", headers={"Host": "evil.example"})  # auth off in this app: leads home
    if resp.status_code in (301, 302, 303, 307, 308):
        assert resp.headers["Location"].startswith("/") and not resp.headers["Location"].startswith("//")


def test_an_absolute_location_leaves_as_a_path(app: Flask) -> None:
    app.add_url_rule("/test-absolute", view_func=lambda: redirect("http://evil.example/r/211204?lang=en"))
    resp = app.test_client().get("/test-absolute")
    assert resp.headers["Location"] == "/r/211204?lang=en"
