"""Every error of the API answers the one JSON shape, names the parameter at fault, and leaks nothing."""

# ruff: noqa: F811  (pytest fixtures imported from tests/test_api_support.py are parameters here)

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.errors import StoreUnavailable
from service.records import REASONS
from service.times import format_local, now_ms
from tests.test_api_support import TZ, api_ctx, api_settings, app, client, store  # noqa: F401 (fixtures)

V = "211204101200"


def assert_error(resp: Any, status: int, code: str, field: str | None = None, mentions: str | None = None) -> str:
    assert resp.status_code == status, resp.get_data(as_text=True)
    assert resp.mimetype == "application/json"
    body = resp.get_json()
    assert set(body) == {"error"}
    err = body["error"]
    assert set(err) <= {"code", "message", "field"} and err["code"] == code
    assert isinstance(err["message"], str) and err["message"]
    assert err.get("field") == field
    if mentions is not None:
        assert mentions in err["message"]
    return str(err["message"])


BAD_PARAMS = [
    # (path, query, field)
    ("/api/v1/regions", {"depth": "2"}, "depth"),
    ("/api/v1/regions/211204", {"x": "1"}, "x"),
    ("/api/v1/yields", {"region": "2112"}, "region"),
    ("/api/v1/yields", {"region": "21120410120a"}, "region"),
    ("/api/v1/yields", {"year": "1999"}, "year"),
    ("/api/v1/yields", {"year": "2101"}, "year"),
    ("/api/v1/yields", {"year": "last"}, "year"),
    ("/api/v1/yields", {"crop": "banana"}, "crop"),
    ("/api/v1/yields", {"group_by": "device"}, "group_by"),
    ("/api/v1/yields", {"unit": "imperial"}, "unit"),
    ("/api/v1/yields", {"regoin": "211204"}, "regoin"),
    ("/api/v1/readings", {}, "metric"),
    ("/api/v1/readings", {"metric": "humidity"}, "metric"),
    ("/api/v1/readings", {"metric": "air_temp", "region": "1"}, "region"),
    ("/api/v1/readings", {"metric": "air_temp", "start": "2025-06-01"}, "start"),
    ("/api/v1/readings", {"metric": "air_temp", "start": "2025-06-01T08:00:00"}, "start"),
    ("/api/v1/readings", {"metric": "air_temp", "end": "2025-06-01T08:00:00 08:00"}, "end"),
    ("/api/v1/readings", {"metric": "air_temp", "start": "2025-06-01T10:00:00+08:00",
                          "end": "2025-06-01T08:00:00+08:00"}, "start"),
    ("/api/v1/readings", {"metric": "air_temp", "start": "2025-06-01T08:00:00+08:00",
                          "end": "2025-06-01T08:00:00+08:00"}, "start"),
    ("/api/v1/readings", {"metric": "air_temp", "every": "1hour"}, "every"),
    ("/api/v1/readings", {"metric": "air_temp", "every": "0m"}, "every"),
    ("/api/v1/readings", {"metric": "air_temp", "every": "1s", "start": "2025-06-01T00:00:00+08:00",
                          "end": "2025-06-02T00:00:00+08:00"}, "every"),
    ("/api/v1/readings", {"metric": "air_temp", "agg": "median"}, "agg"),
    ("/api/v1/readings", {"metric": "air_temp", "group_by": "crop"}, "group_by"),
    ("/api/v1/devices", {"region": "abc"}, "region"),
    ("/api/v1/devices", {"kind": "station"}, "kind"),
    ("/api/v1/devices/qh-gs-101", {"verbose": "1"}, "verbose"),
    ("/api/v1/alerts", {"active": "yes"}, "active"),
    ("/api/v1/alerts", {"region": "21120"}, "region"),
    ("/api/v1/health", {"deep": "1"}, "deep"),
    ("/api/v1/rejections", {"limit": "0"}, "limit"),
    ("/api/v1/rejections", {"limit": "1001"}, "limit"),
    ("/api/v1/rejections", {"reason": "bad_vibes"}, "reason"),
    ("/api/v1/rejections", {"device": "a/b"}, "device"),
    ("/api/v1/openapi.json", {"v": "2"}, "v"),
]


@pytest.mark.parametrize(("path", "query", "field"), BAD_PARAMS,
                         ids=[f"{p.rsplit('/', 1)[-1]}-{f}-{i}" for i, (p, _, f) in enumerate(BAD_PARAMS)])
def test_bad_parameters_answer_400_naming_the_parameter(client: FlaskClient, path: str, query: dict[str, str],
                                                        field: str) -> None:
    assert_error(client.get(path, query_string=query), 400, "bad_request", field, mentions=field)


def test_an_unknown_parameter_lists_the_allowed_ones(client: FlaskClient) -> None:
    msg = assert_error(client.get("/api/v1/yields?yaer=2025"), 400, "bad_request", "yaer")
    assert "year" in msg and "group_by" in msg


def test_a_repeated_parameter_is_refused(client: FlaskClient) -> None:
    assert_error(client.get("/api/v1/yields?year=2025&year=2026"), 400, "bad_request", "year")


def test_too_many_windows_says_how_many(client: FlaskClient) -> None:
    msg = assert_error(client.get("/api/v1/readings", query_string={
        "metric": "air_temp", "every": "1m", "start": "2025-01-01T00:00:00+08:00",
        "end": "2025-02-01T00:00:00+08:00"}), 400, "bad_request", "every")
    assert "44640 windows" in msg and "10000" in msg


def test_a_plus_sign_lost_in_the_url_gets_a_hint(client: FlaskClient) -> None:
    msg = assert_error(client.get("/api/v1/readings?metric=air_temp&start=2025-06-01T08:00:00+08:00"),
                       400, "bad_request", "start")
    assert "%2B" in msg


@pytest.mark.parametrize("path", ["/api/v1/regions/211204999", "/api/v1/regions/211204101299",
                                  "/api/v1/yields?region=211205", "/api/v1/readings?metric=air_temp&region=211204999",
                                  "/api/v1/devices?region=211204101299", "/api/v1/alerts?region=211204999",
                                  "/api/v1/devices/qh-st-nope"])
def test_unknown_regions_and_devices_answer_404(client: FlaskClient, path: str) -> None:
    assert_error(client.get(path), 404, "not_found")


@pytest.mark.parametrize(("path", "field"), [("/api/v1/regions/abc", "code"), ("/api/v1/regions/2112041", "code"),
                                             ("/api/v1/devices/bad%20id", "device_id")])
def test_malformed_path_parameters_answer_400(client: FlaskClient, path: str, field: str) -> None:
    assert_error(client.get(path), 400, "bad_request", field)


def test_unknown_path_and_wrong_method(client: FlaskClient) -> None:
    assert_error(client.get("/api/v1/nothing"), 404, "not_found", mentions="/api/v1/nothing")
    assert_error(client.get("/api/v2/regions"), 404, "not_found")
    msg = assert_error(client.delete("/api/v1/yields"), 405, "method_not_allowed")
    assert "GET" in msg and "POST" in msg
    resp = client.post("/api/v1/regions")
    assert_error(resp, 405, "method_not_allowed")
    assert "GET" in resp.headers["Allow"]


# -- POST /yields -------------------------------------------------------------------------------


def _body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"village": V, "ts": format_local(now_ms() - 3_600_000, TZ), "crop": "corn",
                            "area_mu": 10, "yield_jin": 11_000}
    for key, value in changes.items():
        if value is ...:
            body.pop(key, None)
        else:
            body[key] = value
    return body


BAD_BODIES = [
    (_body(village=...), "village"),
    (_body(village="211204101"), "village"),  # a township, not a village
    (_body(village="211204101299"), "village"),
    (_body(village=211204101200), "village"),
    (_body(ts=...), "ts"),
    (_body(ts="yesterday"), "ts"),
    (_body(ts="2026-05-01T08:00:00"), "ts"),
    (_body(ts=now_ms() + 3_600_000), "ts"),  # ahead of the clock
    (_body(ts="2020-01-01T08:00:00+08:00"), "ts"),  # over a year old
    (_body(crop=...), "crop"),
    (_body(crop="banana"), "crop"),
    (_body(area_mu=...), "area_mu"),
    (_body(area_ha=1), "area_mu"),  # both area keys
    (_body(area_mu=0), "area_mu"),
    (_body(area_mu=-3), "area_mu"),
    (_body(area_mu="10"), "area_mu"),
    (_body(area_mu=..., area_ha=1e9), "area_ha"),
    (_body(yield_jin=...), "yield_jin"),
    (_body(yield_jin=-1), "yield_jin"),
    (_body(yield_jin=True), "yield_jin"),
    (_body(yield_jin=..., yield_kg="much"), "yield_kg"),
    (_body(plot="x" * 65), "plot"),
    (_body(plot=7), "plot"),
    (_body(moisture_pct=120), "moisture_pct"),
    (_body(moisture_pct="wet"), "moisture_pct"),
    (_body(device="qh-gs-101"), "device"),
]


@pytest.mark.parametrize(("body", "field"), BAD_BODIES, ids=[f"{f}-{i}" for i, (_, f) in enumerate(BAD_BODIES)])
def test_post_yield_validation_names_the_field(client: FlaskClient, body: dict[str, Any], field: str) -> None:
    resp = client.post("/api/v1/yields", json=body)
    code = resp.get_json()["error"]["code"]
    assert code == "bad_request" or code in REASONS  # a decoder's rejection carries its reason (issue 18)
    assert_error(resp, 400, code, field, mentions=field)


def test_post_yield_stores_nothing_when_refused(client: FlaskClient) -> None:
    client.post("/api/v1/yields", json=_body(area_mu=0))
    assert client.get(f"/api/v1/yields?region={V}").get_json()["total"]["records"] == 0


@pytest.mark.parametrize("data", [b"", b"not json", b"{\"village\": ", b"\xff\xfe", b"[1, 2]", b"42", b"null"])
def test_post_yield_needs_a_json_object(client: FlaskClient, data: bytes) -> None:
    assert_error(client.post("/api/v1/yields", data=data, content_type="application/json"), 400, "bad_request")


def test_post_yield_refuses_an_oversized_body(client: FlaskClient) -> None:
    big = _body(plot="p") | {"padding": "x" * 70_000}
    assert_error(client.post("/api/v1/yields", json=big), 413, "payload_too_large")


def test_post_yield_refuses_query_parameters(client: FlaskClient) -> None:
    assert_error(client.post("/api/v1/yields?dry_run=1", json=_body()), 400, "bad_request", "dry_run")


# -- failures inside ----------------------------------------------------------------------------


def test_an_unexpected_exception_is_500_without_a_traceback(app: Flask) -> None:
    def boom() -> str:
        raise RuntimeError("secret detail /etc/passwd")

    app.add_url_rule("/api/v1/_boom", view_func=boom)
    resp = app.test_client().get("/api/v1/_boom")
    msg = assert_error(resp, 500, "internal")
    text = resp.get_data(as_text=True)
    assert "secret" not in text and "Traceback" not in text and "RuntimeError" not in text
    assert "log" in msg


def test_an_unavailable_store_is_503_with_retry_after(app: Flask) -> None:
    def locked() -> str:
        raise StoreUnavailable("sqlite: database is locked", retry_after_s=2.4)

    app.add_url_rule("/api/v1/_locked", view_func=locked)
    resp = app.test_client().get("/api/v1/_locked")
    assert_error(resp, 503, "unavailable")
    assert resp.headers["Retry-After"] == "2"
    assert "locked" not in resp.get_data(as_text=True)


# -- any text in any parameter: an answer or a 400, never a 500 ---------------------------------

PARAMS_OF = {
    "/api/v1/yields": ["region", "year", "crop", "group_by", "unit"],
    "/api/v1/readings": ["region", "start", "end", "every", "agg", "group_by"],
    "/api/v1/devices": ["region"],
    "/api/v1/alerts": ["region", "active"],
    "/api/v1/rejections": ["limit", "reason", "device"],
}
CASES = [(path, name) for path, names in PARAMS_OF.items() for name in names]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=st.sampled_from(CASES), value=st.text(max_size=40))
def test_any_parameter_value_answers_or_names_the_parameter(client: FlaskClient, case: tuple[str, str],
                                                            value: str) -> None:
    path, name = case
    query = {name: value} | ({"metric": "air_temp"} if path.endswith("readings") else {})
    resp = client.get(path, query_string=query)
    if resp.status_code == 200:
        return
    if resp.status_code == 404:
        assert_error(resp, 404, "not_found")
    else:
        assert_error(resp, 400, "bad_request", name)


# -- bodies: validated by the models the OpenAPI document shows --------------------------------

@pytest.mark.parametrize("path", ["/api/v1/yields", "/api/v1/alerts/1/ack"])
def test_a_deeply_nested_body_is_a_400_not_a_500(client: FlaskClient, path: str) -> None:
    deep = b"[" * 10_000 + b"]" * 10_000
    assert_error(client.post(path, data=deep, content_type="application/json"), 400, "bad_request")


@pytest.mark.parametrize(("changes", "field"), [
    ({"area_mu": "12.5"}, "area_mu"),  # a number as text is not a number (strict, as the document says)
    ({"village": 211204101200}, "village"),
    ({"plot": ["a"]}, "plot"),
    ({"moisture_pct": 101}, "moisture_pct"),
    ({"yield_jin": True}, "yield_jin"),
])
def test_body_fields_are_checked_by_the_documented_model(client: FlaskClient, changes: dict[str, Any],
                                                         field: str) -> None:
    assert_error(client.post("/api/v1/yields", json=_body(**changes)), 400, "bad_request", field)


@pytest.mark.parametrize(("body", "field"), [({"by": 5}, "by"), ({"by": "   "}, "by"), ({"who": "王会计"}, "who"),
                                             ({"by": "x" * 65}, "by")])
def test_ack_bodies_are_checked_by_the_documented_model(client: FlaskClient, body: dict[str, Any],
                                                        field: str) -> None:
    assert_error(client.post("/api/v1/alerts/1/ack", json=body), 400, "bad_request", field)


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
                    max_leaves=12)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(extra=st.dictionaries(st.sampled_from(["village", "ts", "crop", "area_mu", "area_ha", "yield_jin",
                                              "yield_kg", "plot", "moisture_pct", "other"]), JSON, max_size=4))
def test_no_body_makes_a_500(client: FlaskClient, extra: dict[str, Any]) -> None:
    resp = client.post("/api/v1/yields", json=_body() | extra)
    assert resp.status_code in (201, 400), resp.get_data(as_text=True)
    ack = client.post("/api/v1/alerts/1/ack", json=extra)
    assert ack.status_code in (400, 404), ack.get_data(as_text=True)


def test_a_readings_answer_too_big_is_refused_before_the_store_is_asked(client: FlaskClient) -> None:
    # every device of the district, 10-minute windows over 60 days: ~9,000 windows × 56 series
    msg = assert_error(client.get("/api/v1/readings", query_string={
        "metric": "air_temp", "group_by": "device", "every": "10m", "start": "2025-06-01T00:00:00+08:00",
        "end": "2025-07-31T00:00:00+08:00"}), 400, "bad_request", "every")
    assert "100,000 points" in msg
