"""Fixtures of the access-control tests: the real app with ``web.auth = required`` on a seeded store,
five callers (anonymous, village viewer, township viewer, township editor, district admin) each
logged in through the real login form, and a checker that no answer mentions anything outside a
caller's scope.

Seeded so every scope has something to leak: two villages of 张相镇 (ZX) and one of 杨木林子镇 (YML),
with readings, harvests, an alert and a rejection in each township.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from flask import Flask
from flask.testing import FlaskClient

from service.auth import Accounts, SqliteAccounts, open_accounts, visible
from service.auth.passwords import Passwords
from service.context import Context, build
from service.land import Land
from service.records import Batch, Reading, Rejection, YieldRecord
from service.settings import Settings, load
from service.store.base import Alert
from service.store.sqlite import SqliteStore
from service.times import local_year, now_ms, year_bounds
from service.web import create_app
from tests.brokers import free_port
from tests.conftest import CONFIG

DISTRICT, ZX, YML = "211204", "211204101", "211204102"
V_DMT, V_XJT, V_QYM = "211204101200", "211204101202", "211204102200"
DEV_DMT, DEV_XJT, DEV_QYM = "qh-st-101200-1", "qh-st-101202-1", "qh-st-102200-1"
PASSWORD = "correct horse battery staple"

# caller → (role, scope); None is the anonymous caller
CALLERS: dict[str, tuple[str, str] | None] = {
    "anonymous": None,
    "village_viewer": ("viewer", V_DMT),
    "township_viewer": ("viewer", ZX),
    "township_editor": ("editor", ZX),
    "district_admin": ("admin", DISTRICT),
}
# Callers only some matrices need (the harvest records' rows): a village-scope editor.
EXTRA_CALLERS: dict[str, tuple[str, str]] = {"village_editor": ("editor", V_DMT)}


def cheap(on: Settings) -> Accounts:
    """The same account rules with a cheap (still Argon2id) hasher, so many logins stay fast; the
    app upgrades such a hash to its own parameters at the next login."""
    return Accounts(SqliteAccounts.in_dir(on.data_dir), build(on).tree,
                    Passwords(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)))


@dataclass
class World:
    app: Flask
    ctx: Context
    store: SqliteStore
    accounts: Accounts
    alerts: dict[str, int]  # village → id of its seeded alert
    clients: dict[str, FlaskClient]


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html) or re.search(
        r'name="csrf-token" content="([^"]+)"', html)
    assert found, html[:500]
    return found.group(1)


def login(client: FlaskClient, username: str, password: str = PASSWORD) -> Any:
    page = client.get("/login")
    assert page.status_code == 200
    return client.post("/login", data={"username": username, "password": password,
                                       "csrf_token": csrf_of(page.get_data(as_text=True)), "next": "/"})


def page_csrf(client: FlaskClient, path: str = "/login") -> str:
    return csrf_of(client.get(path).get_data(as_text=True))


def _seed(ctx: Context, store: SqliteStore) -> dict[str, int]:
    now = now_ms()
    hour = 3_600_000
    readings = [Reading(dev, village, now - k * hour, {"soil_moisture": 20.0 + k, "battery": 3.9})
                for dev, village in ((DEV_DMT, V_DMT), (DEV_XJT, V_XJT), (DEV_QYM, V_QYM)) for k in range(1, 4)]
    year_start = year_bounds(local_year(now, ctx.settings.tz), ctx.settings.tz)[0] + 86_400_000
    yields = [YieldRecord("", V_DMT, year_start, "corn", 10 / 15, 12_000 / 2, plot="A", source="api"),
              YieldRecord("", V_XJT, year_start, "corn", 20 / 15, 22_000 / 2, plot="B", source="api"),
              YieldRecord("", V_QYM, year_start, "corn", 40 / 15, 50_000 / 2, plot="C", source="api")]
    rejections = [Rejection(now - hour, f"nongyun/v1/{d}/telemetry", d, "out_of_range", "soil_moisture 140", "{}")
                  for d in (DEV_DMT, DEV_QYM, "not-registered")]
    store.write(Batch(readings=readings, yields=yields, rejections=rejections, messages=12, worker="test"))
    alerts = {}
    for village in (V_DMT, V_QYM):
        made = store.open_alert(Alert(f"drought:{village}", "drought", "warning", village, None, "土壤干旱",
                                      now - 2 * hour))
        assert made is not None
        alerts[village] = made.id
    return alerts


def access_land(ctx: Context) -> Land:
    """One plot in each seeded village, named by its village code so a leaked plot shows as a leak."""
    return Land.from_entries([{"id": "demo", "name": "示范区", "kind": "demo_zone"}],
                             [{"id": f"P{v}-1", "village": v, "area_mu": 100, "groups": ["demo"]}
                              for v in (V_DMT, V_XJT, V_QYM)], ctx.tree)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    folder: Path = tmp_path_factory.mktemp("access")
    settings = load(CONFIG, env={}, overrides={"store.data_dir": str(folder / "data"), "web.auth": "required",
                                               "mqtt.url": f"mqtt://127.0.0.1:{free_port()}"})
    ctx = replace(build(settings), land=access_land(build(settings)))
    store = SqliteStore(folder / "store.sqlite3")
    alerts = _seed(ctx, store)
    accounts = open_accounts(settings.data_dir, ctx.tree)
    everyone: dict[str, tuple[str, str] | None] = {**CALLERS, **EXTRA_CALLERS}
    for name, spec in everyone.items():
        if spec is not None:
            accounts.add(name, PASSWORD, spec[0], spec[1], now_ms())
    app = create_app(ctx, store)
    clients = {}
    for name, spec in everyone.items():
        client = app.test_client()
        if spec is not None:
            resp = login(client, name)
            assert resp.status_code == 302, resp.get_data(as_text=True)
        clients[name] = client
    try:
        yield World(app, ctx, store, accounts, alerts, clients)
    finally:
        store.close()


def strings_in(value: Any) -> Iterator[str]:
    """Every string of a JSON value, dict keys included."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield str(k)
            yield from strings_in(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings_in(v)


def leaks(ctx: Context, scope: str, text_or_json: Any) -> list[str]:
    """What an answer shows that lies outside ``scope``: region codes (and township names) that are
    neither inside it nor on the path to it, devices registered elsewhere."""
    out = []
    outside_names = {t.name for t in ctx.tree.district.children if not visible(scope, t.code)}
    values = [text_or_json] if isinstance(text_or_json, str) else list(strings_in(text_or_json))
    for s in values:
        for code in re.findall(r"(?<!\d)(\d{12}|\d{9}|\d{6})(?!\d)", s):
            if ctx.tree.find(code) is not None and not visible(scope, code):
                out.append(code)
        for dev in re.findall(r"qh-[a-z]{2}-[0-9-]+", s):
            found = ctx.registry.find(dev)
            if found is not None and not found.village.startswith(scope):
                out.append(dev)
        out.extend(name for name in outside_names if name in s)
    return out
