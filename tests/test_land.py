"""Plots and area groups from config: validation at start (file, entry and field named), lookups."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.context import build
from service.errors import SettingsError
from service.land import LAND_ID, Land
from service.regions import RegionTree
from service.settings import load
from tests.conftest import CONFIG
from tests.land_support import V_FAR, V_NEAR, ZX, land_config, land_ctx

TREE = RegionTree.load(CONFIG / "regions.yaml")


def test_the_context_loads_the_land_of_its_config_folder(tmp_path: Path) -> None:
    land = land_ctx(tmp_path).land
    assert len(land) == 3
    far = land.plot("P-far")
    assert far is not None and far.village == V_FAR and far.name == "东岗地" and far.groups == ("kendi-demo",)
    assert far.area_ha == pytest.approx(2.0)  # 30 亩
    near = land.plot("P-near")
    assert near is not None and near.area_ha == 2.0 and near.name == ""
    assert [p.id for p in land.plots(ZX, "kendi-demo")] == ["P-far", "P-near"]
    assert [p.id for p in land.plots(V_NEAR)] == ["P-near", "P-plain"]
    assert [p.id for p in land.in_village(V_FAR)] == ["P-far"]
    assert land.plots("211204102") == []
    assert [(g.id, g.kind) for g in land.groups()] == [("gbz-2024", "high_standard"), ("kendi-demo", "demo_zone")]


def test_missing_files_mean_no_land(tmp_path: Path) -> None:
    folder = land_config(tmp_path / "config", groups=None, plots=None)
    ctx = build(load(folder, env={}, overrides={"store.data_dir": str(tmp_path / "data")}))
    assert len(ctx.land) == 0 and ctx.land.groups() == []


BAD_PLOTS = {
    "id": ("{id: 'a b', village: '211204101204', area_mu: 1}", "plot #1: id:"),
    "duplicate": ("{id: x, village: '211204101204', area_mu: 1}\n  - {id: x, village: '211204101204', area_mu: 2}",
                  "plot #2: id: duplicate"),
    "village not in tree": ("{id: x, village: '211204101999', area_mu: 1}", "plot #1 (x): village:"),
    "township as village": ("{id: x, village: '211204101', area_mu: 1}", "plot #1 (x): village:"),
    "no area": ("{id: x, village: '211204101204'}", "plot #1 (x): area_mu: give exactly one"),
    "both areas": ("{id: x, village: '211204101204', area_mu: 1, area_ha: 1}", "(x): area_mu: give exactly one"),
    "zero area": ("{id: x, village: '211204101204', area_mu: 0}", "(x): area_mu:"),
    "negative ha": ("{id: x, village: '211204101204', area_ha: -1}", "(x): area_ha:"),
    "text area": ("{id: x, village: '211204101204', area_ha: 'big'}", "(x): area_ha:"),
    "unknown group": ("{id: x, village: '211204101204', area_mu: 1, groups: [nope]}", "(x): groups: ['nope']"),
}


@pytest.mark.parametrize("case", sorted(BAD_PLOTS))
def test_a_bad_plot_stops_the_start_naming_file_entry_and_field(tmp_path: Path, case: str) -> None:
    entry, expected = BAD_PLOTS[case]
    folder = land_config(tmp_path / "config", plots=f"plots:\n  - {entry}\n")
    with pytest.raises(SettingsError) as err:
        build(load(folder, env={}, overrides={"store.data_dir": str(tmp_path / "data")}))
    assert "plots.yaml" in str(err.value) and expected in str(err.value), str(err.value)


@pytest.mark.parametrize(("entry", "expected"), [
    ("{id: g, name: 示范, kind: park}", "group #1 (g): kind:"),
    ("{id: g, kind: demo_zone}", "group #1 (g): name:"),
    ("{id: '', name: 示范, kind: demo_zone}", "group #1: id:"),
])
def test_a_bad_area_group_stops_the_start(tmp_path: Path, entry: str, expected: str) -> None:
    folder = land_config(tmp_path / "config", groups=f"groups:\n  - {entry}\n", plots=None)
    with pytest.raises(SettingsError, match=r"area_groups\.yaml") as err:
        build(load(folder, env={}, overrides={"store.data_dir": str(tmp_path / "data")}))
    assert expected in str(err.value)


@given(st.text(max_size=70))
def test_ids_are_accepted_exactly_when_they_match_the_contract(plot_id: str) -> None:
    entry = {"id": plot_id, "village": V_FAR, "area_mu": 1}
    valid = LAND_ID.fullmatch(plot_id) is not None
    try:
        land = Land.from_entries([], [entry], TREE)
    except SettingsError as exc:
        assert not valid and "id:" in str(exc)
    else:
        assert valid and land.plot(plot_id) is not None


@given(st.one_of(st.floats(allow_nan=True), st.integers(-10**6, 10**6)))
def test_areas_are_accepted_exactly_when_positive_and_at_most_10000_ha(area: float) -> None:
    try:
        land = Land.from_entries([], [{"id": "x", "village": V_FAR, "area_ha": area}], TREE)
    except SettingsError:
        assert not 0 < area <= 10_000
    else:
        plot = land.plot("x")
        assert plot is not None and plot.area_ha == area and 0 < area <= 10_000


def test_land_is_a_value_rebuilt_from_entries() -> None:
    groups = [{"id": "kendi-demo", "name": "示范区", "kind": "demo_zone"}]
    first = Land.from_entries(groups, [{"id": "a", "village": V_FAR, "area_mu": 15, "groups": ["kendi-demo"]}], TREE)
    second = Land.from_entries(groups, [{"id": "a", "village": V_NEAR, "area_mu": 15}], TREE)
    assert first.plot("a") != second.plot("a")  # a move is a new Land; the old one is unchanged
    assert [p.id for p in first.plots(group="kendi-demo")] == ["a"] and second.plots(group="kendi-demo") == []
