"""The OpenAPI document is valid, covers exactly the registered routes, describes real answers, and
declares the login every operation but its own needs."""

# ruff: noqa: F811  (pytest fixtures imported from tests/test_api_support.py are parameters here)

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

from service.context import build
from service.settings import Settings
from service.store.base import Alert
from service.store.sqlite import SqliteStore
from service.times import format_local, now_ms
from service.web import create_app
from tests.access_support import page_csrf
from tests.test_api_support import TZ, api_ctx, api_settings, app, client, crop_yield, reading, seed, store  # noqa: F401 (fixtures)


@pytest.fixture
def doc(client: FlaskClient) -> dict[str, Any]:
    resp = client.get("/api/v1/openapi.json")
    assert resp.status_code == 200
    body = resp.get_json()
    assert isinstance(body, dict)
    return body


def _registered(app: Flask) -> set[tuple[str, str]]:
    out = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/"):
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        out |= {(path, m.lower()) for m in (rule.methods or ()) if m not in ("HEAD", "OPTIONS")}
    return out


def test_the_document_is_valid_openapi_3_1(doc: dict[str, Any]) -> None:
    assert doc["openapi"].startswith("3.1")
    validate(doc)


def test_every_route_is_documented_and_every_documented_path_exists(app: Flask, doc: dict[str, Any]) -> None:
    documented = {(path, method) for path, ops in doc["paths"].items() for method in ops}
    registered = _registered(app)
    assert registered == documented
    assert ("/api/v1/yields", "post") in documented and ("/api/v1/regions/{code}", "get") in documented
    assert len(registered) >= 11


def test_parameters_come_from_the_models_and_the_catalogue(doc: dict[str, Any]) -> None:
    readings = {p["name"]: p for p in doc["paths"]["/api/v1/readings"]["get"]["parameters"]}
    assert set(readings) == {"region", "metric", "start", "end", "every", "agg", "group_by"}
    assert readings["metric"]["required"] is True and readings["start"]["required"] is False
    assert "soil_moisture" in readings["metric"]["schema"]["enum"]
    assert readings["agg"]["schema"]["enum"] == ["mean", "min", "max", "sum", "count"]
    assert readings["start"]["schema"]["format"] == "date-time"
    yields = {p["name"]: p for p in doc["paths"]["/api/v1/yields"]["get"]["parameters"]}
    assert "corn" in yields["crop"]["schema"]["enum"]
    assert yields["year"]["schema"]["minimum"] == 2000 and yields["year"]["schema"]["maximum"] == 2100
    node = doc["paths"]["/api/v1/regions/{code}"]["get"]
    assert {p["name"]: p["in"] for p in node["parameters"]} == {"code": "path"}
    assert "404" in node["responses"]
    assert "area_group" in str(yields["group_by"]["schema"]) and "area_group" in yields
    assert {p["name"] for p in doc["paths"]["/api/v1/plots"]["get"]["parameters"]} == {"region", "group", "unit"}
    assert {p["name"] for p in doc["paths"]["/api/v1/area-groups"]["get"]["parameters"]} == {"region", "unit"}
    total = doc["components"]["schemas"]["YieldTotal"]["properties"]
    assert "unattributed_records" in total
    post = doc["paths"]["/api/v1/yields"]["post"]
    assert "201" in post["responses"]
    assert post["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/YieldIn")


def _validator(doc: dict[str, Any], ref: str) -> Draft202012Validator:
    return Draft202012Validator({"$ref": ref, "components": doc["components"]})


def test_answers_match_their_documented_schemas(client: FlaskClient, store: SqliteStore, doc: dict[str, Any]) -> None:
    now = now_ms()
    village = "211204101200"
    seed(store, readings=[reading("qh-st-101200-1", village, now - 600_000, soil_moisture=21.5, battery=3.2)],
         yields=[crop_yield(village, "2025-10-01T10:00", "corn", mu=10, jin=12_000)])
    post = {"village": village, "ts": format_local(now - 60_000, TZ), "crop": "rice", "area_mu": 3, "yield_jin": 3300}
    drought = Alert(f"drought:{village}", "drought", "warning", village, None, "土壤干旱", now - 3_600_000)
    alert = store.open_alert(drought)
    assert alert is not None
    calls: list[tuple[str, str, str, dict[str, Any] | None]] = [
        ("get", "/api/v1/regions", "/api/v1/regions", None),
        ("get", f"/api/v1/regions/{village}", "/api/v1/regions/{code}", None),
        ("get", "/api/v1/yields?year=2025", "/api/v1/yields", None),
        ("get", "/api/v1/yields?year=2025&group_by=area_group", "/api/v1/yields", None),
        ("get", f"/api/v1/plots?region={village}", "/api/v1/plots", None),
        ("get", "/api/v1/area-groups", "/api/v1/area-groups", None),
        ("post", "/api/v1/yields", "/api/v1/yields", post),
        ("get", f"/api/v1/readings?metric=soil_moisture&region={village}", "/api/v1/readings", None),
        ("get", f"/api/v1/moisture?region={village}", "/api/v1/moisture", None),
        ("get", "/api/v1/moisture?group_by=village&date=2026-07-15", "/api/v1/moisture", None),
        ("get", "/api/v1/agromet?year=2025", "/api/v1/agromet", None),
        ("get", f"/api/v1/agromet?region={village}", "/api/v1/agromet", None),
        ("get", f"/api/v1/devices?region={village}", "/api/v1/devices", None),
        ("get", "/api/v1/devices/qh-st-101200-1", "/api/v1/devices/{device_id}", None),
        ("get", f"/api/v1/alerts?region={village}", "/api/v1/alerts", None),
        ("post", f"/api/v1/alerts/{alert.id}/ack", "/api/v1/alerts/{alert_id}/ack", {"by": "王会计"}),
        ("get", "/api/v1/health", "/api/v1/health", None),
        ("get", "/api/v1/rejections", "/api/v1/rejections", None),
        ("get", "/api/v1/openapi.json", "/api/v1/openapi.json", None),
        ("get", "/api/v1/yields/records?limit=1", "/api/v1/yields/records", None),
        ("get", "/api/v1/yields/records/{id}?unit=si", "/api/v1/yields/records/{record_id}", None),
        ("patch", "/api/v1/yields/records/{id}", "/api/v1/yields/records/{record_id}",
         {"yield_jin": 3000, "reason": "称重单抄错"}),
        ("post", "/api/v1/yields/records/{id}/review", "/api/v1/yields/records/{record_id}/review",
         {"decision": "return", "comment": "请核对"}),
        ("post", "/api/v1/yields/records/{id}/void", "/api/v1/yields/records/{record_id}/void", {"reason": "重复"}),
        ("get", "/api/v1/yields/records/{id}/history", "/api/v1/yields/records/{record_id}/history", None),
    ]
    checked = set()
    entered = ""
    for method, url, path, body in calls:
        resp = client.open(url.replace("{id}", entered), method=method.upper(), json=body)
        if path == "/api/v1/yields" and method == "post":
            entered = resp.get_json()["id"]
        responses = doc["paths"][path][method]["responses"]
        status = str(resp.status_code)
        assert status in responses and status.startswith("2"), (url, resp.get_data(as_text=True))
        ref = responses[status]["content"]["application/json"]["schema"]["$ref"]
        errors = [e.message for e in _validator(doc, ref).iter_errors(resp.get_json())]
        assert errors == [], (url, errors)
        checked.add((path, method))
    # the ledger import is a multipart upload with the page's CSRF token (not JSON)
    ledger = ("收获时间,乡镇（街道）,村（社区）,作物,地块,面积（亩）,产量（斤）\r\n"
              "2025-10-02 09:00,张相镇,大孟屯村,玉米,,10,11000\r\n")
    resp = client.post("/api/v1/yields/import", content_type="multipart/form-data",
                       data={"file": (io.BytesIO(ledger.encode("utf-8-sig")), "ledger.csv")},
                       headers={"X-CSRFToken": page_csrf(client, "/import")})
    ref = doc["paths"]["/api/v1/yields/import"]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert [e.message for e in _validator(doc, ref["$ref"]).iter_errors(resp.get_json())] == []
    checked.add(("/api/v1/yields/import", "post"))
    # the weekly 墒情简报 answers a file: each format with a media type the document lists
    brief = doc["paths"]["/api/v1/reports/moisture-weekly"]["get"]["responses"]["200"]["content"]
    for fmt in ("pdf", "xlsx"):
        resp = client.get(f"/api/v1/reports/moisture-weekly?region={village}&format={fmt}")
        assert resp.status_code == 200 and resp.mimetype in brief, resp.get_data(as_text=True)[:300]
        assert brief[resp.mimetype]["schema"] == {"type": "string", "contentMediaType": resp.mimetype}
    checked.add(("/api/v1/reports/moisture-weekly", "get"))
    assert checked == {(p, m) for p, ops in doc["paths"].items() for m in ops}  # every operation exercised


def test_error_answers_match_the_error_schema(client: FlaskClient, doc: dict[str, Any]) -> None:
    validator = _validator(doc, "#/components/schemas/ErrorAnswer")
    for url in ("/api/v1/yields?year=1", "/api/v1/regions/211204999", "/api/v1/nowhere"):
        assert list(validator.iter_errors(client.get(url).get_json())) == []
    assert list(validator.iter_errors(client.put("/api/v1/health").get_json())) == []


def test_security_schemes_and_which_operations_need_them(doc: dict[str, Any]) -> None:
    schemes = doc["components"]["securitySchemes"]
    assert schemes["bearerToken"] == {**schemes["bearerToken"], "type": "http", "scheme": "bearer"}
    assert "nyt_" in schemes["bearerToken"]["bearerFormat"]
    assert schemes["sessionCookie"] == {**schemes["sessionCookie"], "type": "apiKey", "in": "cookie",
                                        "name": "nongyun_session"}
    assert doc["security"] == [{"bearerToken": []}, {"sessionCookie": []}]
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            if path == "/api/v1/openapi.json":
                assert op["security"] == [] and "401" not in op["responses"]  # public
            else:
                assert op["security"] == doc["security"], (path, method)
                assert op["responses"]["401"]["content"]["application/json"]["schema"]["$ref"].endswith(
                    "/ErrorAnswer"), (path, method)


def test_the_document_secures_exactly_what_the_app_refuses_without_a_login(
        doc: dict[str, Any], api_settings: Settings, tmp_path: Path) -> None:
    """Auth on: each operation the document secures answers an anonymous call 401; the public one 200."""
    settings = api_settings.with_overrides(web_auth="required", store_data_dir=tmp_path / "data")
    secured = create_app(build(settings), SqliteStore(tmp_path / "s.sqlite3")).test_client()
    for path, ops in doc["paths"].items():
        url = path.replace("{code}", "211204").replace("{device_id}", "qh-st-101200-1").replace("{alert_id}", "1")
        for method, op in ops.items():
            status = secured.open(url, method=method.upper(), json={} if method == "post" else None).status_code
            assert status == (401 if op["security"] else 200), (method, url, status)
