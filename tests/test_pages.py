"""The dashboards' server side with Flask's test client: every tier renders, wording and targets
reach the browser, the English switch sticks, and the season targets split as configured."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
import pytest
from flask import Flask
from flask.testing import FlaskClient

from service.context import Context
from service.errors import SettingsError
from service.records import Batch
from service.regions import RegionTree
from service.store.sqlite import SqliteStore
from service.targets import Targets
from service.web import assets
from service.web.i18n import STRINGS
from tests.web_support import crop_yield

ZX, DMT = "211204101", "211204101200"  # 张相镇, 大孟屯村
CONFIG = Path(__file__).resolve().parent.parent / "config"
TZ = ZoneInfo("Asia/Shanghai")

@pytest.fixture
def strict(app: Flask) -> FlaskClient:
    """Templates fail on any name they use that the view did not pass (a missing wording key)."""
    app.jinja_env.undefined = jinja2.StrictUndefined
    return app.test_client()


def page_data(html: str) -> Any:
    m = re.search(r'<script type="application/json" id="page-data">(.*?)</script>', html, re.S)
    assert m, "no page-data block"
    return json.loads(m.group(1))


@pytest.mark.parametrize(("path", "tier", "title"), [
    ("/", "district", "清河区"), ("/r/211204", "district", "清河区"), (f"/r/{ZX}", "township", "张相镇"),
    (f"/r/{DMT}", "village", "大孟屯村"), ("/d/qh-st-101200-1", "device", "qh-st-101200-1"),
    ("/d/qh-gs-101", "device", "qh-gs-101"),
])
def test_every_tier_renders(strict: FlaskClient, path: str, tier: str, title: str) -> None:
    resp = strict.get(path)
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert f'<body data-tier="{tier}">' in html
    assert f"<h1 id=\"title\">{title}" in html
    assert f"/assets/{tier}.js" in html and "/vendor/echarts.min.js" in html
    data = page_data(html)
    assert data["tier"] == tier and data["lang"] == "zh" and data["tz"] == "Asia/Shanghai"
    assert set(data["strings"]) == set(STRINGS)


def test_district_page_has_a_card_per_township_with_targets(client: FlaskClient, ctx: Context) -> None:
    html = client.get("/").get_data(as_text=True)
    towns = [t.code for t in ctx.tree.district.children]
    assert re.findall(r'<article class="card" data-code="(\d+)"', html) == towns
    data = page_data(html)
    assert data["children"] == towns
    assert data["targets"]["211204"] == {"area": 186300.0, "yield": 225000000.0,
                                         "yield_per_area": pytest.approx(225e6 / 186300)}
    assert sum(data["targets"][t]["yield"] for t in towns) == pytest.approx(225e6)
    assert data["villages"][ZX] == 13  # denominator of "12/13 村上报": the two communities hold no farmland


def test_township_page_lists_its_villages(client: FlaskClient, ctx: Context) -> None:
    html = client.get(f"/r/{ZX}").get_data(as_text=True)
    rows = re.findall(r'<tr data-code="(\d{12})"><th><a href="/r/\d{12}">([^<]+)</a>', html)
    assert rows == [(v.code, v.name_zh) for v in ctx.tree.get(ZX).children]
    for chart in ("chart-soil", "chart-temp", "chart-rain", "chart-yield"):
        assert f'id="{chart}"' in html
    assert f"/export/yields.xlsx?region={ZX}" in html


def test_village_page_has_stations_metric_charts_and_the_form(client: FlaskClient, ctx: Context) -> None:
    html = client.get(f"/r/{DMT}").get_data(as_text=True)
    stations = [d.id for d in ctx.registry.under(DMT)]
    assert re.findall(r'<tr data-device="([^"]+)">', html) == stations
    metrics = {m for d in ctx.registry.under(DMT) for m in d.metrics}
    assert set(re.findall(r'class="chart" data-metric="(\w+)"', html)) == metrics
    for name in ("village", "ts", "crop", "area_mu", "yield_jin", "plot"):
        assert f'name="{name}"' in html
        if name != "village":
            assert f'data-error-for="{name}"' in html  # where the API's error for this field goes
    assert re.findall(r'<button type="button" data-range="(\w+)"', html) == ["24h", "7d", "30d", "90d"]


def test_english_switch_sets_a_cookie(client: FlaskClient) -> None:
    resp = client.get(f"/r/{ZX}?lang=en")
    html = resp.get_data(as_text=True)
    assert "<h1 id=\"title\">Zhangxiang Town" in html and '<html lang="en">' in html
    assert '<h2><a href="/r/211204101">Zhangxiang Town</a></h2>' in html  # the season card too
    assert "nongyun_lang=en" in resp.headers["Set-Cookie"]
    later = client.get("/").get_data(as_text=True)  # the test client keeps cookies
    assert page_data(later)["lang"] == "en" and "Qinghe District" in later
    back = client.get("/?lang=zh").get_data(as_text=True)
    assert page_data(back)["lang"] == "zh"


def test_unknown_region_and_device_are_404(client: FlaskClient) -> None:
    assert client.get("/r/211204999").status_code == 404
    assert client.get("/r/abc").status_code == 404
    assert client.get("/d/no-such-device").status_code == 404


def test_echarts_is_served_from_the_package_build_not_from_git(client: FlaskClient) -> None:
    with client.get("/vendor/echarts.min.js") as resp:
        assert resp.status_code == 200, "setup.py puts echarts.min.js into static/vendor on every install"
        assert resp.mimetype == "text/javascript" and b"echarts" in resp.data[:2000]
    locked = json.loads((CONFIG.parent / "package-lock.json").read_text())["packages"]["node_modules/echarts"]
    assert json.loads((assets.VENDOR / "versions.json").read_text()) == {"echarts": locked["version"]}
    static = assets.VENDOR.parent
    assert sorted(p.name for p in static.glob("*.js")) == [
        "alerts.js", "area_groups.js", "confirm.js", "device.js", "district.js", "history.js", "import.js",
        "nongyun.js", "numbers.js", "review.js", "township.js", "village.js"]
    ignored = (CONFIG.parent / ".gitignore").read_text().splitlines()
    assert "service/web/static/vendor/" in ignored  # third-party files never reach git


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_without_echarts_pages_say_so_in_words(client: FlaskClient, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch, lang: str) -> None:
    monkeypatch.setattr(assets, "ECHARTS", tmp_path / "echarts.min.js")  # an installation without it
    html = client.get(f"/r/211204101?lang={lang}").get_data(as_text=True)
    assert 'id="charts-missing"' in html and STRINGS["charts_missing_long"][0 if lang == "zh" else 1] in html
    assert "/vendor/echarts.min.js" not in html  # no script tag that can only fail
    assert page_data(html)["strings"]["charts_missing"] == STRINGS["charts_missing"][0 if lang == "zh" else 1]
    resp = client.get("/vendor/echarts.min.js")
    assert resp.status_code == 404 and "reinstall nongyun" in resp.get_data(as_text=True)
    warning = assets.missing_warning()
    assert warning is not None and "echarts.min.js" in warning and "pip install" in warning


def test_with_echarts_no_warning_and_no_notice(client: FlaskClient) -> None:
    assert assets.missing_warning() is None
    assert 'id="charts-missing"' not in client.get("/r/211204101").get_data(as_text=True)


def test_yield_records_of_a_village_in_jin_and_mu(client: FlaskClient, store: SqliteStore) -> None:
    store.write(Batch(yields=[crop_yield(DMT, "2025-10-08T09:00", "corn", 30, 36_000, plot="P1"),
                        crop_yield(DMT, "2025-10-09T09:00", "soybean", 10, 3_000),
                        crop_yield(DMT, "2024-10-09T09:00", "corn", 99, 99_000)]))
    got = client.get(f"/r/{DMT}/yield-records.json?year=2025").get_json()["records"]
    assert [(r["ts"], r["crop"], r["area"], r["yield"], r["yield_per_area"]) for r in got] == [
        ("2025-10-09T09:00:00+08:00", "soybean", 10.0, 3000.0, 300.0),
        ("2025-10-08T09:00:00+08:00", "corn", 30.0, 36000.0, 1200.0)]
    bad = client.get(f"/r/{DMT}/yield-records.json?year=19")
    assert bad.status_code == 400 and bad.get_json()["error"]["field"] == "year"


# -- targets ------------------------------------------------------------------------------------


@pytest.fixture
def tree() -> RegionTree:
    return RegionTree.load(CONFIG / "regions.yaml")


def test_targets_split_by_farming_villages(tree: RegionTree) -> None:
    t = Targets.load(CONFIG / "targets.toml", tree)
    district = t.get("211204")
    assert district is not None and (district.sown_area_mu, district.grain_output_jin) == (186300, 225e6)
    farming = {town.code: sum(v.kind == "village" for v in town.children) for town in tree.district.children}
    assert sum(farming.values()) == 41
    for town in tree.district.children:
        got = t.get(town.code)
        assert got is not None
        assert got.grain_output_jin == pytest.approx(225e6 * farming[town.code] / 41)
        villages = [t.get(v.code) for v in town.children]
        assert sum(v.grain_output_jin for v in villages if v) == pytest.approx(got.grain_output_jin)
    community = t.get("211204101001")  # 金枫社区: urban, no farmland
    assert community is not None and community.grain_output_jin == 0


def test_explicit_township_and_village_targets_win(tree: RegionTree, tmp_path: Path) -> None:
    path = tmp_path / "targets.toml"
    path.write_text((CONFIG / "targets.toml").read_text(encoding="utf-8") + """
[townships.211204101]
grain_output_jin = 80000000
[villages.211204101200]
grain_output_jin = 10000000
""", encoding="utf-8")
    t = Targets.load(path, tree)
    zx, dmt = t.get(ZX), t.get(DMT)
    assert zx is not None and zx.grain_output_jin == 80e6
    assert dmt is not None and dmt.grain_output_jin == 10e6
    xjt = t.get("211204101202")  # one of the 12 other farming villages of 张相镇 shares the rest
    assert xjt is not None and xjt.grain_output_jin == pytest.approx(70e6 / 12)
    others = [t.get(town.code) for town in tree.district.children if town.code != ZX]
    assert sum(o.grain_output_jin for o in others if o) == pytest.approx(225e6 - 80e6)
    assert zx.sown_area_mu == pytest.approx(186300 * 13 / 41)  # area still split by villages


def test_malformed_or_missing_targets(tree: RegionTree, tmp_path: Path) -> None:
    assert Targets.load(tmp_path / "none.toml", tree).get("211204") is None
    bad = tmp_path / "bad.toml"
    bad.write_text('[district]\nsown_area_mu = 1\ngrain_output_jin = 1\n[villages.211204999999]\n'
                   'grain_output_jin = 5\n', encoding="utf-8")
    with pytest.raises(SettingsError, match="211204999999"):
        Targets.load(bad, tree)


# -- land: plots, area groups, coverage ----------------------------------------------------------


def test_village_page_lists_its_plots_with_this_seasons_yields(client: FlaskClient, store: SqliteStore,
                                                                ctx: Context) -> None:
    plots = ctx.land.in_village(DMT)
    assert len(plots) > 5
    year = datetime.now(TZ).year
    first = plots[0]
    store.write(Batch(yields=[crop_yield(DMT, f"{year}-01-02T09:00", "corn", 40, 48_000, plot=first.id),
                              crop_yield(DMT, f"{year}-01-02T10:00", "corn", 20, 26_000, plot=first.id)]))
    html = client.get(f"/r/{DMT}").get_data(as_text=True)
    rows = re.findall(r'<tr data-plot="([^"]+)">(.*?)</tr>', html, re.S)
    assert [pid for pid, _ in rows] == [p.id for p in plots]
    cells = dict(rows)[first.id]
    assert '<td data-field="yield">74000.0</td>' in cells
    assert '<td data-field="yield_per_area">1233.33</td>' in cells  # area-weighted: 74,000 / 60
    assert '<td data-field="records">2</td>' in cells
    assert '<td data-field="yield">—</td>' in dict(rows)[plots[1].id]  # not harvested yet: dashes
    en = client.get(f"/r/{DMT}?lang=en").get_data(as_text=True)
    assert "Plot area (亩)" in en


@pytest.mark.parametrize("code", ["211204", ZX])
def test_district_and_township_pages_carry_the_area_group_card(strict: FlaskClient, ctx: Context, code: str) -> None:
    html = strict.get(f"/r/{code}").get_data(as_text=True)
    assert 'id="area-groups"' in html and 'id="area-group-table"' in html
    assert "/assets/area_groups.js" in html
    assert "示范区与项目区" in html
    kinds = page_data(html)["area_group_kinds"]
    assert kinds["kendi-demo"] == "demo_zone" and set(kinds) == {g.id for g in ctx.land.groups()}
    assert "Demo zone and project areas" in strict.get(f"/r/{code}?lang=en").get_data(as_text=True)


def test_village_page_has_no_area_group_card(client: FlaskClient) -> None:
    assert 'id="area-groups"' not in client.get(f"/r/{DMT}").get_data(as_text=True)


def test_coverage_counts_only_villages_with_farmland(client: FlaskClient, ctx: Context) -> None:
    data = page_data(client.get("/r/211204").get_data(as_text=True))
    # 红旗街道: five communities and two farming villages; 张相镇: two communities and 13 villages
    assert data["villages"]["211204001"] == 2 and data["villages"][ZX] == 13
    assert data["villages"]["211204"] == 41
    farming = set(data["farming"])
    assert "211204001001" not in farming and "211204001200" in farming
    assert all(ctx.land.in_village(v) for v in farming)
    town = page_data(client.get(f"/r/{ZX}").get_data(as_text=True))
    assert town["villages"][ZX] == 13 and "211204101001" not in town["farming"]
