"""The district → township → village tree, keyed by the national statistical division codes.

Codes nest by prefix (district 6 digits, township 9, village 12), so "every village under X" is the
integer range ``[X·10^k, (X+1)·10^k)``: backends filter points by a village-code range instead of
joining against a list, and a point's township and district follow from its village code.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import yaml

from .errors import NotFound, SettingsError

Level = Literal["district", "township", "village"]
LEVEL_DIGITS: dict[Level, int] = {"district": 6, "township": 9, "village": 12}
CHILD_LEVEL: dict[Level, Level | None] = {"district": "township", "township": "village", "village": None}


@dataclass
class Region:
    code: str
    name_zh: str
    name_en: str
    level: Level
    kind: str
    parent: Region | None = field(default=None, repr=False)
    children: list[Region] = field(default_factory=list, repr=False)

    @property
    def name(self) -> str:
        return self.name_zh

    def village_range(self) -> tuple[int, int]:
        """Inclusive range of 12-digit village codes that lie under this region."""
        scale = 10 ** (12 - len(self.code))
        lo = int(self.code) * scale
        return lo, lo + scale - 1

    def contains(self, code: str) -> bool:
        return code.startswith(self.code)

    def villages(self) -> Iterator[Region]:
        if self.level == "village":
            yield self
        for child in self.children:
            yield from child.villages()


def township_of(village_code: str) -> str:
    return village_code[:9]


def district_of(village_code: str) -> str:
    return village_code[:6]


class RegionTree:
    """The loaded tree; ``get`` answers NotFound for a code that is not in it."""

    def __init__(self, district: Region) -> None:
        self.district = district
        self._by_code: dict[str, Region] = {}
        stack = [district]
        while stack:
            node = stack.pop()
            self._by_code[node.code] = node
            stack.extend(node.children)

    def get(self, code: str) -> Region:
        try:
            return self._by_code[code]
        except KeyError:
            raise NotFound(f"no region with code {code!r}") from None

    def find(self, code: str) -> Region | None:
        return self._by_code.get(code)

    def tier_around(self, region: Region, level: str) -> list[Region]:
        """Every region of ``level`` that lies under (or above) ``region``, by code: the groups of a
        grouping, listed whether or not they have data."""
        return sorted((n for n in self if n.level == level and (n.contains(region.code) or region.contains(n.code))),
                      key=lambda n: n.code)

    def __iter__(self) -> Iterator[Region]:
        return iter(self._by_code.values())

    def __len__(self) -> int:
        return len(self._by_code)

    def group_level(self, code: str, level: Level) -> str:
        """The code of the ancestor at ``level`` of a village (or township) code."""
        return code[: LEVEL_DIGITS[level]]

    @classmethod
    def load(cls, path: Path) -> RegionTree:
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise SettingsError(f"{path}: cannot read the region tree: {exc}") from None
        try:
            d = doc["district"]
            district = Region(str(d["code"]), d["name_zh"], d.get("name_en", ""), "district", "district")
            for t in doc["townships"]:
                town = Region(str(t["code"]), t["name_zh"], t.get("name_en", ""), "township", t.get("kind", "town"),
                              parent=district)
                district.children.append(town)
                for v in t.get("villages", []):
                    town.children.append(Region(str(v["code"]), v["name_zh"], v.get("name_en", ""), "village",
                                                v.get("kind", "village"), parent=town))
        except (KeyError, TypeError) as exc:
            raise SettingsError(f"{path}: malformed region tree: missing or wrong {exc}") from None
        tree = cls(district)
        for node in tree:
            digits = LEVEL_DIGITS[node.level]
            if len(node.code) != digits or not node.code.isdigit():
                raise SettingsError(f"{path}: {node.level} code {node.code!r} must be {digits} digits")
            if node.parent and not node.code.startswith(node.parent.code):
                raise SettingsError(f"{path}: {node.code} does not lie under its parent {node.parent.code}")
        return tree
