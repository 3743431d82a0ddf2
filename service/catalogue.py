"""Metric and crop catalogues, loaded from config/catalogue.toml; nothing about them lives in code."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from .errors import SettingsError


@dataclass(frozen=True)
class Metric:
    id: str
    name_zh: str
    name_en: str
    unit: str
    min: float
    max: float


@dataclass(frozen=True)
class Crop:
    id: str
    name_zh: str
    name_en: str
    yield_kg_per_mu: float
    plausible_kg_per_mu: tuple[float, float]
    sow: tuple[str, str]
    harvest: tuple[str, str]


@dataclass(frozen=True)
class Catalogue:
    metrics: dict[str, Metric]
    crops: dict[str, Crop]

    @classmethod
    def load(cls, path: Path) -> Catalogue:
        try:
            doc = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise SettingsError(f"{path}: cannot read the catalogue: {exc}") from None
        try:
            metrics = {
                k: Metric(k, v["name_zh"], v.get("name_en", k), v.get("unit", ""), float(v["min"]), float(v["max"]))
                for k, v in doc.get("metrics", {}).items()
            }
            crops = {
                k: Crop(k, v["name_zh"], v.get("name_en", k), float(v["yield_kg_per_mu"]),
                        (float(v["plausible_kg_per_mu"][0]), float(v["plausible_kg_per_mu"][1])),
                        (v["sow"][0], v["sow"][1]), (v["harvest"][0], v["harvest"][1]))
                for k, v in doc.get("crops", {}).items()
            }
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise SettingsError(f"{path}: malformed catalogue entry: {exc!r}") from None
        for m in metrics.values():
            if m.min >= m.max:
                raise SettingsError(f"{path}: metric {m.id}: min {m.min} must be below max {m.max}")
        if not metrics or not crops:
            raise SettingsError(f"{path}: needs at least one [metrics.*] and one [crops.*] entry")
        return cls(metrics, crops)
