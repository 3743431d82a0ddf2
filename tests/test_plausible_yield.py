"""A harvest record's 单产 must lie in its crop's record_jin_per_mu (config/catalogue.toml): on MQTT, on
staff entry, with an area of its own or its plot's. Bounds are inclusive in whatever units the record
came, so a clerk's exact 2,500 斤/亩 typed as kg over hectares is still on the bound."""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from service.catalogue import Catalogue
from service.context import Context
from service.errors import BadInput, SettingsError
from service.harvest_entry import record_from_body
from service.payloads import MAX_YIELD_KG, PayloadDecoder, Rejected
from service.store.sqlite import SqliteStore
from service.times import format_local, now_ms
from service.web import create_app
from tests.conftest import CONFIG
from tests.land_support import SCALE, V_NEAR, land_ctx

YIELD = f"nongyun/v1/{SCALE}/yield"
NOW = 1_790_000_000_000
CATALOGUE = Catalogue.load(CONFIG / "catalogue.toml")
CROPS = sorted(CATALOGUE.crops)
FIXTURE_OK = settings(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None, max_examples=300)


@pytest.fixture
def decoder(ctx: Context) -> PayloadDecoder:
    return PayloadDecoder(ctx.registry, ctx.catalogue)


def _record(crop: str, mu: float, jin: float, area_si: bool, yield_si: bool) -> dict[str, object]:
    """A record of ``jin`` 斤 over ``mu`` 亩, each quantity in 亩/斤 or converted to ha/kg as a device would."""
    body: dict[str, object] = {"ts": NOW - 1000, "crop": crop}
    body.update({"area_ha": mu / 15} if area_si else {"area_mu": mu})
    body.update({"yield_kg": jin / 2} if yield_si else {"yield_jin": jin})
    return body


def _decode(decoder: PayloadDecoder, body: dict[str, object]) -> tuple[int, list[tuple[str, str]]]:
    d = decoder.decode(YIELD, orjson.dumps(body), NOW)
    return len(d.yields), [(r.reason, r.detail) for r in d.rejections]


# -- the ranges in the catalogue -------------------------------------------------------------------------


def test_every_crop_has_a_range_around_its_expected_yield_and_the_simulators_spread() -> None:
    for crop in CATALOGUE.crops.values():
        lo, hi = crop.record_jin_per_mu
        spread = [2 * crop.plausible_kg_per_mu[0], 2 * crop.yield_kg_per_mu, 2 * crop.plausible_kg_per_mu[1]]
        assert 0 < lo < spread[0] <= spread[1] <= spread[2] < hi, crop.id
    assert CATALOGUE.crops["corn"].record_jin_per_mu == (300, 2500)
    assert CATALOGUE.crops["potato"].record_jin_per_mu[1] > 3 * CATALOGUE.crops["corn"].record_jin_per_mu[1]


def _catalogue_with(tmp_path: Path, corn_line: str | None) -> Path:
    text = (CONFIG / "catalogue.toml").read_text(encoding="utf-8")
    corn = text.index("[crops.corn]")
    old = re.compile(r"record_jin_per_mu = .*\n").search(text, corn)
    assert old is not None
    text = text[:old.start()] + (corn_line + "\n" if corn_line is not None else "") + text[old.end():]
    path = tmp_path / "catalogue.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(("line", "says"), [
    (None, "crop corn: record_jin_per_mu must be [min, max] in 斤/亩"),
    ("record_jin_per_mu = 2500", "record_jin_per_mu must be [min, max]"),
    ('record_jin_per_mu = ["300", 2500]', "record_jin_per_mu must be [min, max]"),
    ("record_jin_per_mu = [300, 2500, 9000]", "record_jin_per_mu must be [min, max]"),
    ("record_jin_per_mu = [2500, 300]", "crop corn: record_jin_per_mu = [2500, 300] needs 0 < min < max"),
    ("record_jin_per_mu = [300, 300]", "needs 0 < min < max"),
    ("record_jin_per_mu = [-5, 2500]", "needs 0 < min < max"),
    ("record_jin_per_mu = [0, 2500]", "needs 0 < min < max"),
    ("record_jin_per_mu = [300, inf]", "needs 0 < min < max"),
    ("record_jin_per_mu = [300, nan]", "needs 0 < min < max"),
    ("record_jin_per_mu = [1000, 2500]", "the simulator's plausible_kg_per_mu (900–1400 斤/亩) must lie inside"),
])
def test_a_bad_range_is_a_settings_error_naming_the_crop(tmp_path: Path, line: str | None, says: str) -> None:
    with pytest.raises(SettingsError, match=re.escape(says)) as err:
        Catalogue.load(_catalogue_with(tmp_path, line))
    assert str(tmp_path / "catalogue.toml") in str(err.value)


def test_a_deployment_sets_its_own_range(tmp_path: Path) -> None:
    cat = Catalogue.load(_catalogue_with(tmp_path, "record_jin_per_mu = [400.5, 1800]"))
    assert cat.crops["corn"].record_jin_per_mu == (400.5, 1800.0)


# -- the decoder: inclusive bounds in every unit ------------------------------------------------------------

areas_mu = st.floats(0.01, 10_000).map(lambda x: round(x, 2)).filter(lambda x: x > 0)
units = st.tuples(st.booleans(), st.booleans())


@FIXTURE_OK
@given(crop=st.sampled_from(CROPS), mu=areas_mu, at_top=st.booleans(), si=units)
def test_a_yield_on_either_bound_is_accepted(decoder: PayloadDecoder, crop: str, mu: float, at_top: bool,
                                             si: tuple[bool, bool]) -> None:
    bound = CATALOGUE.crops[crop].record_jin_per_mu[1 if at_top else 0]
    assume(bound * mu / 2 <= MAX_YIELD_KG)  # past it: out_of_range (tests/test_payloads.py)
    assert _decode(decoder, _record(crop, mu, bound * mu, *si)) == (1, [])


@FIXTURE_OK
@given(crop=st.sampled_from(CROPS), mu=areas_mu, at_top=st.booleans(), si=units,
       off=st.floats(1e-6, 1e3))
def test_a_yield_just_outside_is_refused_naming_the_value_and_the_range(
        decoder: PayloadDecoder, crop: str, mu: float, at_top: bool, si: tuple[bool, bool], off: float) -> None:
    lo, hi = CATALOGUE.crops[crop].record_jin_per_mu
    per_mu = hi * (1 + off) if at_top else lo / (1 + off)
    assume(per_mu * mu / 2 <= MAX_YIELD_KG)
    body = _record(crop, mu, per_mu * mu, *si)
    accepted, [(reason, detail)] = _decode(decoder, body)
    assert (accepted, reason) == (0, "implausible_yield")
    assert f"outside the plausible {lo:,g}–{hi:,g} 斤/亩 for {crop}" in detail
    key = "yield_kg" if si[1] else "yield_jin"
    assert detail.startswith(f"{key} = ")


@FIXTURE_OK
@given(crop=st.sampled_from(CROPS), mu=areas_mu, where=st.floats(0, 1), si=units)
def test_any_yield_inside_is_accepted_and_stored_as_given(decoder: PayloadDecoder, crop: str, mu: float,
                                                         where: float, si: tuple[bool, bool]) -> None:
    lo, hi = CATALOGUE.crops[crop].record_jin_per_mu
    jin = (lo + (hi - lo) * where) * mu
    assume(jin / 2 <= MAX_YIELD_KG)
    [y] = decoder.decode(YIELD, orjson.dumps(_record(crop, mu, jin, *si)), NOW).yields
    assert y.yield_kg == pytest.approx(jin / 2, rel=1e-12)
    assert y.area_ha == pytest.approx(mu / 15, rel=1e-12)


def test_the_issue_18_record_is_refused_naming_yield_jin(decoder: PayloadDecoder) -> None:
    body = {"ts": NOW - 1000, "crop": "corn", "area_mu": 1.0, "yield_jin": 900_000}
    with pytest.raises(Rejected) as r:
        decoder.yield_record(body, "", "211204101200", NOW)
    assert (r.value.reason, r.value.field) == ("implausible_yield", "yield_jin")
    assert r.value.detail == ("yield_jin = 900000 on 1 亩 is a 单产 of 900,000.0 斤/亩, outside the plausible "
                              "300–2,500 斤/亩 for corn")


def test_a_zero_yield_is_implausible_and_errors_of_one_key_come_first(decoder: PayloadDecoder) -> None:
    assert _decode(decoder, _record("corn", 10, 0, False, True))[1][0][0] == "implausible_yield"
    wet = {**_record("corn", 10, 1, False, False), "moisture_pct": 101}  # implausible too, but say what's wrong
    assert [r for r, _ in _decode(decoder, wet)[1]] == ["out_of_range"]
    unknown = {**_record("corn", 10, 1, False, False), "crop": "durian"}
    assert [r for r, _ in _decode(decoder, unknown)[1]] == ["unknown_crop"]


def test_in_a_backlog_only_the_implausible_record_is_refused(decoder: PayloadDecoder) -> None:
    good = _record("rice", 10, 11_000, False, False)
    bad = _record("rice", 10, 110_000, False, False)  # a digit too many
    d = decoder.decode(YIELD, orjson.dumps([good, bad, good | {"ts": NOW - 2000}]), NOW)
    assert len(d.yields) == 2
    assert [(j.reason, j.detail[:9]) for j in d.rejections] == [("implausible_yield", "record 1:")]


# -- a plot's area counts too ----------------------------------------------------------------------------


@pytest.fixture
def land(tmp_path: Path) -> Context:
    return land_ctx(tmp_path)  # P-plain: 10 亩 in V_NEAR; P-near: 2 ha


def test_a_record_without_area_is_judged_on_its_plots_area(land: Context) -> None:
    decoder = PayloadDecoder(land.registry, land.catalogue, land.land, land.tree)
    ok = {"ts": NOW - 1000, "crop": "corn", "plot": "P-plain", "yield_jin": 25_000}  # 2,500 斤/亩: the bound
    assert _decode(decoder, ok) == (1, [])
    on_ha = {"ts": NOW - 1000, "crop": "corn", "plot": "P-near", "yield_kg": 30 * 2500 / 2}  # 2 ha = 30 亩
    assert _decode(decoder, on_ha) == (1, [])
    accepted, [(reason, detail)] = _decode(decoder, {**ok, "yield_jin": 25_001})
    assert (accepted, reason) == (0, "implausible_yield")
    assert detail == ("yield_jin = 25001 on the plot's 10 亩 is a 单产 of 2,500.1 斤/亩, outside the plausible "
                      "300–2,500 斤/亩 for corn")
    # an area of its own wins over the plot's
    assert _decode(decoder, {**ok, "yield_jin": 25_001, "area_mu": 11})[0] == 1


# -- staff entry: REST, through the real app and store -------------------------------------------------------


def test_staff_entry_refuses_it_with_a_400_naming_the_field(land: Context) -> None:
    decoder = PayloadDecoder(land.registry, land.catalogue, land.land, land.tree)
    body = {"village": V_NEAR, "ts": NOW - 60_000, "crop": "soybean", "area_mu": 2, "yield_kg": 1500}
    with pytest.raises(BadInput) as err:
        record_from_body(land, decoder, body, NOW)
    assert (err.value.field, err.value.code) == ("yield_kg", "implausible_yield")
    assert "1,500.0 斤/亩" in str(err.value) and "100–1,000 斤/亩" in str(err.value)


def test_the_api_answers_implausible_yield_and_stores_nothing(land: Context, tmp_path: Path) -> None:
    db = SqliteStore(tmp_path / "api.sqlite3")
    try:
        client: FlaskClient = create_app(land, db).test_client()
        ts = format_local(now_ms() - 3_600_000, land.settings.tz)
        body = {"village": V_NEAR, "ts": ts, "crop": "corn", "area_mu": 1.0, "yield_jin": 900_000}
        resp = client.post("/api/v1/yields", json=body)
        assert resp.status_code == 400, resp.get_data(as_text=True)
        error = resp.get_json()["error"]
        assert (error["code"], error["field"]) == ("implausible_yield", "yield_jin")
        assert "900,000.0 斤/亩" in error["message"] and "300–2,500 斤/亩" in error["message"]
        year = int(ts[:4])
        total = client.get(f"/api/v1/yields?region={V_NEAR}&year={year}").get_json()["total"]
        assert total["records"] == 0
        ok = client.post("/api/v1/yields", json={**body, "yield_jin": 1200})
        assert ok.status_code == 201, ok.get_data(as_text=True)
    finally:
        db.close()



# -- the harvest form knows every code a staff entry can get ------------------------------------------------

VILLAGE_JS = Path(__file__).parents[1] / "service" / "web" / "static" / "village.js"
STAFF_CODES = {"bad_request", "bad_record", "bad_timestamp", "not_finite", "out_of_range", "time_in_future",
               "time_too_old", "unknown_crop", "unknown_plot", "plot_mismatch", "implausible_yield", "duplicate",
               "forbidden"}


def test_the_form_renders_every_staff_entry_code_in_both_languages() -> None:
    from service.records import REASONS
    from service.web.i18n import STRINGS

    js = VILLAGE_JS.read_text(encoding="utf-8")
    assert STAFF_CODES - {"bad_request", "duplicate", "forbidden"} <= set(REASONS)
    assert not [c for c in STAFF_CODES if f'"{c}"' not in js]  # a case of its own or a field code
    used = set(re.findall(r"\bT\.(\w+)", js)) | set(re.findall(r'"(form_\w+)"', js))
    assert used - set(STRINGS) == set()
    assert {f"err_{c}" for c in STAFF_CODES if c not in ("unknown_plot", "plot_mismatch")} <= set(STRINGS)
    for key in used:
        zh, en = STRINGS[key]
        assert "area_ha" not in zh + en and "yield_kg" not in zh + en
