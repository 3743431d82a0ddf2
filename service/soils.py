"""Soil parameters of every station (config/soils.toml): texture defaults, township, village and
device overrides, and the 墒情 thresholds.

Read once at start like the other config files, so a typo in a texture name or a field capacity
below the wilting point stops the process with the file and table named, never a request.
The nearest table wins (device, then village, then township, then ``[default]``), and a table
inherits what it leaves out, so "this village is sandy" is one line.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .errors import SettingsError
from .moisture import DEFAULT, Thresholds
from .regions import RegionTree
from .registry import Registry

KEYS = {"texture", "field_capacity", "wilting_point", "depth_cm"}


@dataclass(frozen=True)
class Soil:
    texture: str
    name: str  # Chinese name of the texture
    field_capacity: float  # % vol
    wilting_point: float  # % vol
    depth_cm: float  # sensor depth


LOAM = Soil("loam", "壤土", 29.0, 12.0, 20.0)


@dataclass(frozen=True)
class Soils:
    default: Soil = LOAM
    textures: Mapping[str, Soil] = field(default_factory=lambda: {"loam": LOAM})
    regions: Mapping[str, Soil] = field(default_factory=dict)  # township or village code → soil
    devices: Mapping[str, Soil] = field(default_factory=dict)  # device id → soil
    thresholds: Thresholds = DEFAULT

    def of_village(self, village: str) -> Soil:
        return self.regions.get(village) or self.regions.get(village[:9]) or self.default

    def of_device(self, device: str, village: str) -> Soil:
        """A station's soil: its own table, else its village's (the village it stands in now)."""
        return self.devices.get(device) or self.of_village(village)

    @classmethod
    def load(cls, path: Path, tree: RegionTree, registry: Registry) -> Soils:
        """No file: every station on loam with DESIGN.md's thresholds; a malformed one fails at start."""
        if not path.exists():
            return cls()
        try:
            doc = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise SettingsError(f"{path}: cannot read the soils: {exc}") from None
        try:
            return _parse(doc, tree, registry)
        except (KeyError, TypeError, ValueError) as exc:
            raise SettingsError(f"{path}: {exc}") from None


def _number(table: Mapping[str, Any], key: str, where: str) -> float | None:
    v = table.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise ValueError(f"{where}: {key} must be a number, got {v!r}")
    return float(v)


def _checked(soil: Soil, where: str) -> Soil:
    if not 0 < soil.wilting_point < soil.field_capacity <= 100:
        raise ValueError(f"{where}: need 0 < wilting_point ({soil.wilting_point}) < field_capacity "
                         f"({soil.field_capacity}) ≤ 100 (% vol)")
    if not 0 < soil.depth_cm <= 300:
        raise ValueError(f"{where}: depth_cm ({soil.depth_cm}) must lie in (0, 300]")
    return soil


def _table(raw: Any, where: str, allowed: frozenset[str] = frozenset(KEYS)) -> Mapping[str, Any]:
    if not isinstance(raw, dict):
        raise ValueError(f"{where} must be a table")
    unknown = set(raw) - allowed
    if unknown:
        raise ValueError(f"{where}: unknown keys {sorted(unknown)} (allowed: {', '.join(sorted(allowed))})")
    return raw


def _override(base: Soil, raw: Any, textures: Mapping[str, Soil], where: str) -> Soil:
    """``base`` with the table applied: a texture brings its own values, explicit numbers win."""
    table = _table(raw, where)
    soil = base
    if "texture" in table:
        tex = textures.get(str(table["texture"]))
        if tex is None:
            raise ValueError(f"{where}: texture {table['texture']!r} is not one of {sorted(textures)}")
        soil = replace(tex, depth_cm=base.depth_cm)
    fc, wp, depth = (_number(table, k, where) for k in ("field_capacity", "wilting_point", "depth_cm"))
    soil = replace(soil, field_capacity=soil.field_capacity if fc is None else fc,
                   wilting_point=soil.wilting_point if wp is None else wp,
                   depth_cm=soil.depth_cm if depth is None else depth)
    return _checked(soil, where)


def _parse(doc: Mapping[str, Any], tree: RegionTree, registry: Registry) -> Soils:
    textures: dict[str, Soil] = {}
    for tid, raw in (doc.get("textures") or {"loam": {"name": "壤土", "field_capacity": 29, "wilting_point": 12}}
                     ).items():
        where = f"[textures.{tid}]"
        table = _table(raw, where, frozenset({"name", "field_capacity", "wilting_point", "depth_cm"}))
        fc, wp = _number(table, "field_capacity", where), _number(table, "wilting_point", where)
        if fc is None or wp is None:
            raise ValueError(f"{where}: field_capacity and wilting_point are required")
        depth = _number(table, "depth_cm", where) or LOAM.depth_cm
        textures[tid] = _checked(Soil(tid, str(table.get("name", tid)), fc, wp, depth), where)
    default_raw = doc.get("default") or {}
    first = next(iter(textures.values()))
    default = _override(first, {"texture": first.texture, **default_raw}, textures, "[default]")
    regions: dict[str, Soil] = {}
    tables = doc.get("regions") or {}
    for code in sorted(tables, key=len):  # townships before their villages
        where = f"[regions.\"{code}\"]"
        node = tree.find(str(code))
        if node is None or node.level == "district":
            raise ValueError(f"{where}: {code!r} is not a township or village of the region tree")
        base = regions.get(code[:9], default) if node.level == "village" else default
        regions[code] = _override(base, tables[code], textures, where)
    soils = Soils(default, textures, regions, {}, _thresholds(doc.get("grades") or {}))
    devices: dict[str, Soil] = {}
    for dev_id, raw in (doc.get("devices") or {}).items():
        where = f"[devices.\"{dev_id}\"]"
        dev = registry.find(dev_id)
        if dev is None or dev.kind != "station":
            raise ValueError(f"{where}: {dev_id!r} is not a station of the device registry")
        devices[dev_id] = _override(soils.of_village(dev.village), raw, textures, where)
    return replace(soils, devices=devices)


def _thresholds(raw: Mapping[str, Any]) -> Thresholds:
    if not isinstance(raw, dict):
        raise ValueError("[grades] must be a table")
    unknown = set(raw) - {"moisture", "drought", "frozen_soil_temp", "anomaly_min", "anomaly_max"}
    if unknown:
        raise ValueError(f"[grades]: unknown keys {sorted(unknown)}")

    def bounds(key: str, default: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
        v = raw.get(key)
        if v is None:
            return default
        if not isinstance(v, list) or len(v) != 4 or any(isinstance(b, bool) or not isinstance(b, int | float)
                                                          for b in v):
            raise ValueError(f"[grades]: {key} must be a list of 4 numbers, got {v!r}")
        return (float(v[0]), float(v[1]), float(v[2]), float(v[3]))

    scalars = {k: _number(raw, k, "[grades]") for k in ("frozen_soil_temp", "anomaly_min", "anomaly_max")}
    th = Thresholds(bounds("moisture", DEFAULT.moisture), bounds("drought", DEFAULT.drought),
                    **{k: v for k, v in scalars.items() if v is not None})
    problems = th.problems()
    if problems:
        raise ValueError("[grades]: " + "; ".join(problems))
    return th
