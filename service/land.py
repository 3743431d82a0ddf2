"""Plots (地块) and area groups (示范区, 高标准农田, ...): where grain grows, from config/plots.yaml and
config/area_groups.yaml (DESIGN.md "Land: plots and area groups").

A yield record counts in its plot's village, not where the scale stands, so ingest and the API look
plots up here. ``Land`` is a value object: built whole from entries (``Land.from_entries``) and
never changed, so a registry that reloads at run time swaps the object in one assignment and a
reader never sees half a change. Missing files mean no plots: a county without land data still runs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from .errors import SettingsError
from .regions import RegionTree
from .units import mu_to_ha

LandKind = Literal["demo_zone", "high_standard", "conservation_tillage", "custodial", "other"]
LAND_KINDS: tuple[LandKind, ...] = ("demo_zone", "high_standard", "conservation_tillage", "custodial", "other")
LAND_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
PLOTS_FILE, GROUPS_FILE = "plots.yaml", "area_groups.yaml"
MAX_PLOT_HA = 10_000.0  # the largest area one yield record may carry (payloads.MAX_AREA_HA)


@dataclass(frozen=True)
class AreaGroup:
    id: str
    name: str
    kind: LandKind


@dataclass(frozen=True)
class Plot:
    id: str
    village: str  # 12-digit code
    area_ha: float
    name: str = ""
    groups: tuple[str, ...] = ()


class Land:
    """Every plot and area group of the district; lookups by id, by region code and by group."""

    def __init__(self, plots: Iterable[Plot] = (), groups: Iterable[AreaGroup] = ()) -> None:
        self._groups = {g.id: g for g in groups}
        self._plots = {p.id: p for p in plots}
        self._by_group: dict[str, list[Plot]] = {g: [] for g in self._groups}
        for p in self._plots.values():
            for g in p.groups:
                self._by_group.setdefault(g, []).append(p)

    @classmethod
    def empty(cls) -> Land:
        return cls()

    # -- lookups --------------------------------------------------------------------------------

    def plot(self, plot_id: str) -> Plot | None:
        return self._plots.get(plot_id)

    def group(self, group_id: str) -> AreaGroup | None:
        return self._groups.get(group_id)

    def plots(self, region: str = "", group: str | None = None) -> list[Plot]:
        """The plots whose village lies under ``region`` (a code of any tier; "" = all), optionally
        only those of area group ``group``, sorted by id."""
        pool = self._by_group.get(group, []) if group is not None else self._plots.values()
        return sorted((p for p in pool if p.village.startswith(region)), key=lambda p: p.id)

    def groups(self) -> list[AreaGroup]:
        return sorted(self._groups.values(), key=lambda g: g.id)

    def in_village(self, village: str) -> list[Plot]:
        return self.plots(village) if len(village) == 12 else []

    def __iter__(self) -> Iterator[Plot]:
        return iter(sorted(self._plots.values(), key=lambda p: p.id))

    def __len__(self) -> int:
        return len(self._plots)

    # -- building -------------------------------------------------------------------------------

    @classmethod
    def from_entries(cls, groups: Iterable[Mapping[str, Any]], plots: Iterable[Mapping[str, Any]], tree: RegionTree,
                     *, groups_source: str = GROUPS_FILE, plots_source: str = PLOTS_FILE) -> Land:
        """Validated land from raw entries (the YAML files' lists, or rows of a run-time registry).
        SettingsError names the source, the entry and the field at fault."""
        built_groups: list[AreaGroup] = []
        for i, entry in enumerate(groups):
            where = f"{groups_source}: group #{i + 1}"
            gid = _id(entry, where, {g.id for g in built_groups})
            where += f" ({gid})"
            name = entry.get("name")
            if not isinstance(name, str) or not name.strip():
                raise SettingsError(f"{where}: name: a non-empty display name is required")
            kind = entry.get("kind")
            if kind not in LAND_KINDS:
                raise SettingsError(f"{where}: kind: {kind!r} is not one of {', '.join(LAND_KINDS)}")
            built_groups.append(AreaGroup(gid, name.strip(), kind))
        known = {g.id for g in built_groups}
        built_plots: list[Plot] = []
        seen: set[str] = set()
        for i, entry in enumerate(plots):
            where = f"{plots_source}: plot #{i + 1}"
            pid = _id(entry, where, seen)
            seen.add(pid)
            where += f" ({pid})"
            village = str(entry.get("village", ""))
            node = tree.find(village)
            if node is None or node.level != "village":
                raise SettingsError(f"{where}: village: {village[:20]!r} is not a village in the region tree")
            name = entry.get("name", "")
            if name is None:
                name = ""
            if not isinstance(name, str):
                raise SettingsError(f"{where}: name: must be text")
            member = entry.get("groups") or []
            if not isinstance(member, list) or not all(isinstance(g, str) for g in member):
                raise SettingsError(f"{where}: groups: must be a list of area group ids")
            unknown = [g for g in member if g not in known]
            if unknown:
                raise SettingsError(f"{where}: groups: {unknown} not in {groups_source}")
            built_plots.append(Plot(pid, village, _area(entry, where), name, tuple(dict.fromkeys(member))))
        return cls(built_plots, built_groups)

    @classmethod
    def load(cls, config_dir: Path, tree: RegionTree) -> Land:
        """config/area_groups.yaml and config/plots.yaml; a missing file is an empty list."""
        groups = _entries(config_dir / GROUPS_FILE, "groups")
        plots = _entries(config_dir / PLOTS_FILE, "plots")
        return cls.from_entries(groups, plots, tree, groups_source=str(config_dir / GROUPS_FILE),
                                plots_source=str(config_dir / PLOTS_FILE))


def _entries(path: Path, key: str) -> list[Mapping[str, Any]]:
    if not path.exists():
        return []
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise SettingsError(f"{path}: cannot read: {exc}") from None
    if doc is None:
        return []
    items = doc.get(key) if isinstance(doc, dict) else None
    if items is None and isinstance(doc, dict) and key not in doc:
        raise SettingsError(f"{path}: a top-level {key}: list is required")
    if items is None:
        return []
    if not isinstance(items, list) or not all(isinstance(e, dict) for e in items):
        raise SettingsError(f"{path}: {key}: must be a list of mappings")
    return items


def _id(entry: Mapping[str, Any], where: str, seen: set[str]) -> str:
    raw = entry.get("id")
    value = str(raw) if isinstance(raw, str | int) and not isinstance(raw, bool) else ""
    if not LAND_ID.fullmatch(value):
        raise SettingsError(f"{where}: id: {str(raw)[:80]!r} must match [A-Za-z0-9_-]{{1,64}}")
    if value in seen:
        raise SettingsError(f"{where}: id: duplicate {value!r}")
    return value


def _area(entry: Mapping[str, Any], where: str) -> float:
    """Exactly one of area_mu and area_ha, a finite number > 0; hectares."""
    has_mu, has_ha = "area_mu" in entry, "area_ha" in entry
    if has_mu == has_ha:
        raise SettingsError(f"{where}: area_mu: give exactly one of area_mu and area_ha")
    key = "area_mu" if has_mu else "area_ha"
    raw = entry[key]
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise SettingsError(f"{where}: {key}: {str(raw)[:40]!r} is not a number")
    ha = mu_to_ha(float(raw)) if has_mu else float(raw)
    if not 0 < ha <= MAX_PLOT_HA:  # NaN fails this too
        raise SettingsError(f"{where}: {key}: {raw!r} must be > 0 and at most {MAX_PLOT_HA:g} ha")
    return ha
