"""Season targets (sown area, grain output) for every region, from config/targets.toml.

The district plan gives only district totals; townships and villages get shares in proportion to
their farming villages unless the file sets them, so a township can be compared with its target
from day one and a county that knows better writes its own numbers without touching code.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import SettingsError
from .regions import Region, RegionTree


@dataclass(frozen=True)
class Target:
    sown_area_mu: float
    grain_output_jin: float

    @property
    def per_mu_jin(self) -> float | None:
        return self.grain_output_jin / self.sown_area_mu if self.sown_area_mu > 0 else None

    def as_json(self) -> dict[str, float | None]:
        return {"area": self.sown_area_mu, "yield": self.grain_output_jin, "yield_per_area": self.per_mu_jin}


@dataclass(frozen=True)
class Targets:
    season: int
    by_code: Mapping[str, Target]

    def get(self, code: str) -> Target | None:
        return self.by_code.get(code)

    @classmethod
    def empty(cls) -> Targets:
        return cls(0, {})

    @classmethod
    def load(cls, path: Path, tree: RegionTree) -> Targets:
        """Missing file → no targets (pages then show no target column); a malformed one fails at start."""
        if not path.exists():
            return cls.empty()
        try:
            doc = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise SettingsError(f"{path}: cannot read the targets: {exc}") from None
        try:
            return _split(doc, tree)
        except (KeyError, TypeError, ValueError) as exc:
            raise SettingsError(f"{path}: malformed targets: {exc}") from None


def _explicit(table: Mapping[str, Any], tree: RegionTree, level: str) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for code, values in table.items():
        node = tree.find(str(code))
        if node is None or node.level != level:
            raise ValueError(f"{code!r} is not a {level} of the region tree")
        out[node.code] = {k: float(v) for k, v in values.items() if k in ("sown_area_mu", "grain_output_jin")}
    return out


def _weight(region: Region, kinds: set[str]) -> int:
    return sum(1 for v in region.villages() if v.kind in kinds)


def _share(total: float, parts: Iterable[Region], fixed: Mapping[str, dict[str, float]], key: str,
           weights: Mapping[str, float]) -> dict[str, float]:
    """``total`` minus the explicitly set parts, divided among the others by weight."""
    parts = list(parts)
    set_sum = sum(fixed[p.code][key] for p in parts if key in fixed.get(p.code, {}))
    free = [p for p in parts if key not in fixed.get(p.code, {})]
    weight_sum = sum(weights[p.code] for p in free)
    rest = max(total - set_sum, 0.0)
    out = {p.code: fixed[p.code][key] for p in parts if key in fixed.get(p.code, {})}
    for p in free:
        out[p.code] = rest * weights[p.code] / weight_sum if weight_sum > 0 else 0.0
    return out


def _split(doc: Mapping[str, Any], tree: RegionTree) -> Targets:
    d = doc["district"]
    if str(d.get("code", tree.district.code)) != tree.district.code:
        raise ValueError(f"district code {d['code']!r} is not the tree's {tree.district.code}")
    kinds = set(d.get("weight_kinds", ["village"]))
    totals = {"sown_area_mu": float(d["sown_area_mu"]), "grain_output_jin": float(d["grain_output_jin"])}
    towns = _explicit(doc.get("townships", {}), tree, "township")
    villages = _explicit(doc.get("villages", {}), tree, "village")
    by_code: dict[str, Target] = {tree.district.code: Target(totals["sown_area_mu"], totals["grain_output_jin"])}
    town_weights = {t.code: float(_weight(t, kinds)) for t in tree.district.children}
    town_values = {key: _share(total, tree.district.children, towns, key, town_weights)
                   for key, total in totals.items()}
    for town in tree.district.children:
        by_code[town.code] = Target(town_values["sown_area_mu"][town.code], town_values["grain_output_jin"][town.code])
        farming = {v.code: 1.0 if v.kind in kinds else 0.0 for v in town.children}
        if not any(farming.values()):
            farming = dict.fromkeys(farming, 1.0)
        village_values = {key: _share(town_values[key][town.code], town.children, villages, key, farming)
                          for key in totals}
        for v in town.children:
            by_code[v.code] = Target(village_values["sown_area_mu"][v.code], village_values["grain_output_jin"][v.code])
    return Targets(int(d.get("season", 0)), by_code)
