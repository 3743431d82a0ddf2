"""Schemathesis against ``/api/v1/openapi.json``: no request makes a 500, every answer matches the document.

The app is the real one (``create_app``) on a real SQLite store seeded with a little of everything
(readings, yields, statuses, a rejection), called through its WSGI interface: no server, no network.
Access control is on, as deployed: every generated request carries the bearer token of a district
admin (the document's ``bearerToken`` scheme), so every operation is reached with nothing cut away,
and ``ignored_auth`` checks that each operation the document secures refuses a request without it.
Schemathesis builds requests from the document, valid and invalid, and checks each response's status
code, content type, headers and body against it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import (
    content_type_conformance,
    ignored_auth,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from service.auth import open_accounts
from service.context import Context
from service.records import Batch, Reading, Rejection, StatusChange, YieldRecord
from service.store.sqlite import SqliteStore
from service.times import now_ms
from service.web import create_app
from tests.test_api_support import api_ctx, api_settings  # noqa: F401 (session fixtures)

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance, ignored_auth]


def _seed(store: SqliteStore) -> None:
    now = now_ms()
    hour = 3_600_000
    readings = [
        Reading(device, village, now - i * hour, {"soil_moisture": 20 + i % 7, "air_temp": 5.0 + i % 11,
                                                  "battery": 3.7})
        for device, village in (("qh-st-101203-1", "211204101203"), ("qh-st-101200-1", "211204101200"),
                                ("qh-st-001200-1", "211204001200"))
        for i in range(48)
    ]
    yields = [
        YieldRecord("qh-gs-101", "211204101200", now - 40 * 86_400_000, "corn", 2.5, 24_000.0, plot="p-1"),
        YieldRecord("", "211204101203", now - 20 * 86_400_000, "rice", 1.0, 8_000.0, plot="p-2", source="api"),
        YieldRecord("", "211204001200", now - 400 * 86_400_000, "soybean", 3.0, 6_000.0, source="api"),
    ]
    statuses = [StatusChange("qh-st-101203-1", now - hour, True, "211204101203"),
                StatusChange("qh-st-101200-1", now - 2 * hour, False, "211204101200")]
    rejections = [Rejection(now, "nongyun/v1/qh-st-101203-1/telemetry", "qh-st-101203-1", "out_of_range",
                            "soil_moisture 130 > 100", '{"ts":1}')]
    store.write(Batch(readings, yields, statuses, rejections, messages=len(readings) + 4, worker="seed"))


@dataclass(frozen=True)
class Secured:
    app: Flask
    token: str  # a district admin's: sees and may do everything


@pytest.fixture(scope="module")
def web_app(api_ctx: Context, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:  # noqa: F811
    folder = tmp_path_factory.mktemp("schemathesis")
    settings = api_ctx.settings.with_overrides(web_auth="required", store_data_dir=folder / "data")
    ctx = replace(api_ctx, settings=settings)
    accounts = open_accounts(settings.data_dir, ctx.tree)
    accounts.add("fuzz-admin", "schemathesis-admin", "admin", ctx.tree.district.code, now_ms())
    token = accounts.create_token("fuzz-admin", "schemathesis", now_ms(), days=1).text
    store = SqliteStore(folder / "nongyun.sqlite3")
    _seed(store)
    app = create_app(ctx, store, broker_probe=lambda: {"reachable": False, "error": "no broker in this test"})
    yield Secured(app, token)
    store.close()


def test_the_fuzzed_app_refuses_anonymous_calls_and_answers_the_token(web_app: Secured) -> None:
    """The precondition of everything below: auth is on, and the token opens every operation."""
    client = web_app.app.test_client()
    assert client.get("/api/v1/health").status_code == 401
    assert client.get("/api/v1/openapi.json").status_code == 200
    answer = client.get("/api/v1/health", headers={"Authorization": f"Bearer {web_app.token}"})
    assert answer.status_code == 200, answer.get_data(as_text=True)


@pytest.fixture(scope="module")
def api_schema(web_app: Secured, api_ctx: Context) -> Any:  # noqa: F811
    """The document as the app serves it, with hooks that swap in real codes and ids half of the time:
    the document cannot list them (they come from config), and random strings only ever reach 404."""
    loaded = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", web_app.app)
    token = web_app.token

    @loaded.auth()
    class DistrictAdmin:
        """Every case calls as the district admin; ``ignored_auth`` still tries each without it."""

        def get(self, case: Any, ctx: Any) -> str:
            return token

        def set(self, case: Any, data: str, ctx: Any) -> None:
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}

    regions = [r.code for r in api_ctx.tree]
    villages = [r.code for r in api_ctx.tree if r.level == "village"]
    devices = [d.id for d in api_ctx.registry]
    crops = list(api_ctx.catalogue.crops)
    now = now_ms()  # once: hypothesis replays need strategies that do not change between calls

    def half_real(value: dict[str, Any] | None, key: str, real: list[str]) -> st.SearchStrategy[Any]:
        if not isinstance(value, dict) or key not in value:
            return st.just(value)
        return st.one_of(st.just(value), st.sampled_from(real).map(lambda v: {**value, key: v}))

    @loaded.hook
    def flatmap_path_parameters(ctx: Any, value: dict[str, Any] | None) -> st.SearchStrategy[Any]:
        if isinstance(value, dict) and "code" in value:
            return half_real(value, "code", regions)
        return half_real(value, "device_id", devices)

    @loaded.hook
    def flatmap_query(ctx: Any, value: dict[str, Any] | None) -> st.SearchStrategy[Any]:
        return half_real(value, "region", regions)

    @loaded.hook
    def flatmap_body(ctx: Any, value: Any) -> st.SearchStrategy[Any]:
        if not isinstance(value, dict) or "village" not in value:
            return st.just(value)
        real = st.fixed_dictionaries({"village": st.sampled_from(villages), "crop": st.sampled_from(crops),
                                      "ts": st.integers(now - 300 * 86_400_000, now),
                                      "area_mu": st.floats(0.1, 500), "yield_jin": st.floats(0, 10**6)})
        rest = {k: v for k, v in value.items() if k not in ("area_ha", "yield_kg")}
        return st.one_of(st.just(value), real.map(lambda r: {**rest, **r}))

    return loaded


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_answer_matches_the_document_and_none_is_a_500(case: schemathesis.Case[Any]) -> None:
    case.call_and_validate(checks=CHECKS)
