"""Injection attempts (SQL, Flux, path traversal, template, oversized) through every query and path
parameter, as the most privileged caller: each answers 400 or 404 with the error shape, never 500,
never data. A harvest's free-text plot is stored as text, never run."""

# ruff: noqa: F811  (fixtures imported from tests/access_support.py are parameters here)

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.times import now_ms
from tests.access_support import DEV_DMT, V_DMT, World, page_csrf, world  # noqa: F401 (fixture)

ATTACKS = [
    "' OR '1'='1",
    "1; DROP TABLE yields; --",
    "211204' UNION SELECT username, password_hash FROM users --",
    '") |> drop(columns: ["_value"]) //',
    'r._measurement == "yield" or true',
    '211204" or true or "',
    "../../../../etc/passwd",
    "..%2F..%2F..%2Fetc%2Fpasswd",
    "/etc/passwd",
    "%00",
    "211204\x00",
    "211204\n",
    "{{7*7}}",
    "${jndi:ldap://x/a}",
    "<script>alert(1)</script>",
    "２１１２０４",  # full-width digits: \d matches them, the tree does not
    "-1",
    "1e309",
    "NaN",
    "9" * 5000,
    "a" * 100_000,
]
VALID: dict[str, dict[str, str]] = {  # a valid query per endpoint; each parameter is attacked in turn
    "/api/v1/regions": {},
    "/api/v1/yields": {"region": "211204", "year": "2026", "crop": "corn", "group_by": "township", "unit": "si"},
    "/api/v1/readings": {"region": "211204101", "metric": "soil_moisture", "start": "2026-01-01T00:00:00+08:00",
                         "end": "2026-01-02T00:00:00+08:00", "every": "1h", "agg": "mean", "group_by": "village"},
    "/api/v1/devices": {"region": "211204101"},
    "/api/v1/alerts": {"region": "211204101", "active": "true"},
    "/api/v1/health": {},
    "/api/v1/rejections": {"limit": "10", "reason": "out_of_range", "device": DEV_DMT},
    "/api/v1/openapi.json": {},
    f"/r/{V_DMT}/yield-records.json": {"year": "2026"},
    "/export/yields.csv": {"region": "211204101", "year": "2026"},
}
PATHS = ["/api/v1/regions/{}", "/api/v1/devices/{}", "/api/v1/alerts/{}/ack", "/r/{}", "/d/{}",
         "/r/{}/yield-records.json", "/export/yields.{}"]


def _refused(resp: Any, where: str) -> None:
    if resp.status_code == 200 and resp.get_json() == {"rejections": []}:
        return  # a well-formed device id ("-1" is one) that sent nothing: an empty answer, no data
    assert resp.status_code in (400, 404, 405), (where, resp.status_code, resp.get_data(as_text=True)[:200])
    if resp.mimetype == "application/json":
        body = resp.get_json()
        # bad_request, not_found, ... or the rule's own code (unknown_crop, implausible_yield)
        assert set(body) == {"error"} and re.fullmatch(r"[a-z_]{3,40}", body["error"]["code"]), where
        assert resp.status_code != 400 or body["error"]["code"] not in ("not_found", "method_not_allowed"), where
    else:
        text = resp.get_data(as_text=True)
        assert "清河区" not in text and "records" not in text, where  # an error page, not a page of data


def _cases() -> list[tuple[str, str]]:
    out = [(path, name) for path, params in VALID.items() for name in params]
    out += [(path, "unknown") for path in VALID if path.startswith("/api/")]  # a parameter nobody takes
    return out


@pytest.mark.parametrize(("path", "param"), _cases(), ids=[f"{p} {n}" for p, n in _cases()])
def test_every_query_parameter_refuses_injections(world: World, path: str, param: str) -> None:
    client = world.clients["district_admin"]
    for attack in ATTACKS:
        query = dict(VALID[path]) | {param: attack}
        _refused(client.get(path, query_string=query), f"{path}?{param}={attack[:40]!r}")


@pytest.mark.parametrize("template", PATHS)
def test_every_path_parameter_refuses_injections(world: World, template: str) -> None:
    client = world.clients["district_admin"]
    method = "POST" if template.endswith("/ack") else "GET"
    headers = {"X-CSRFToken": page_csrf(client)} if method == "POST" else {}
    for attack in ATTACKS:
        if "\x00" in attack or "\n" in attack:
            url = template.format(quote(attack, safe=""))
        else:
            url = template.format(quote(attack, safe="/%"))
        # follow_redirects: Werkzeug answers "//" in a path with a redirect to the merged path
        resp = client.open(url, method=method, headers=headers, json={} if method == "POST" else None,
                           follow_redirects=True)
        _refused(resp, f"{template} {attack[:40]!r}")


def test_the_valid_queries_above_do_answer(world: World) -> None:
    """The attacks start from queries that work, so a refusal is the attack's doing."""
    client = world.clients["district_admin"]
    for path, query in VALID.items():
        resp = client.get(path, query_string=query)
        assert resp.status_code == 200, (path, resp.get_data(as_text=True)[:200])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(_cases()), st.text(max_size=300))
def test_any_text_in_any_parameter_never_fails_the_server(world: World, case: tuple[str, str], text: str) -> None:
    path, param = case
    resp = world.clients["district_admin"].get(path, query_string=dict(VALID[path]) | {param: text})
    assert resp.status_code < 500, (path, param, text, resp.get_data(as_text=True)[:200])


def test_a_plot_name_full_of_sql_is_refused_and_harms_nothing(world: World) -> None:
    from zoneinfo import ZoneInfo

    from service.times import format_local

    client = world.clients["district_admin"]
    plot = "x'); DELETE FROM yields; --"
    resp = client.post("/api/v1/yields", headers={"X-CSRFToken": page_csrf(client)},
                       json={"village": V_DMT, "ts": format_local(now_ms() - 120_000, ZoneInfo("Asia/Shanghai")),
                             "crop": "corn", "area_mu": 1, "yield_jin": 900, "plot": plot})
    # With plots registered a plot is an id of the land registry: SQL text is an unknown plot, refused
    # before it reaches any query, and the seeded record is still there.
    assert resp.status_code == 400 and resp.get_json()["error"]["field"] == "plot", resp.get_json()
    records = client.get(f"/r/{V_DMT}/yield-records.json").get_json()["records"]
    assert plot not in {r["plot"] for r in records} and len(records) >= 1
    for field, attack in (("village", "211204101200' OR 1=1 --"), ("crop", "corn'; --"), ("ts", "../etc")):
        bad = client.post("/api/v1/yields", headers={"X-CSRFToken": page_csrf(client)},
                          json={"village": V_DMT, "ts": "2026-01-01T00:00:00+08:00", "crop": "corn", "area_mu": 1,
                                "yield_jin": 900} | {field: attack})
        _refused(bad, field)
