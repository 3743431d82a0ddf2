"""Metric and crop catalogues, loaded from config/catalogue.toml; nothing about them lives in code."""

from __future__ import annotations

import math
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
    # decimals a page shows (battery 3.85 V, soil EC 0.13, light 12,345 lux): the sensor's resolution
    decimals: int = 1


@dataclass(frozen=True)
class Crop:
    id: str
    name_zh: str
    name_en: str
    yield_kg_per_mu: float
    plausible_kg_per_mu: tuple[float, float]
    sow: tuple[str, str]
    harvest: tuple[str, str]
    # the 单产 (斤/亩, inclusive) a harvest record may claim; outside it a record is implausible_yield
    record_jin_per_mu: tuple[float, float]


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
                k: Metric(k, v["name_zh"], v.get("name_en", k), v.get("unit", ""), float(v["min"]), float(v["max"]),
                          _decimals(path, k, v))
                for k, v in doc.get("metrics", {}).items()
            }
            crops = {
                k: Crop(k, v["name_zh"], v.get("name_en", k), float(v["yield_kg_per_mu"]),
                        (float(v["plausible_kg_per_mu"][0]), float(v["plausible_kg_per_mu"][1])),
                        (v["sow"][0], v["sow"][1]), (v["harvest"][0], v["harvest"][1]),
                        _record_range(path, k, v))
                for k, v in doc.get("crops", {}).items()
            }
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise SettingsError(f"{path}: malformed catalogue entry: {exc!r}") from None
        for m in metrics.values():
            if m.min >= m.max:
                raise SettingsError(f"{path}: metric {m.id}: min {m.min} must be below max {m.max}")
        for c in crops.values():
            lo, hi = c.record_jin_per_mu
            if not (0 < lo < hi < math.inf):
                raise SettingsError(f"{path}: crop {c.id}: record_jin_per_mu = [{lo:g}, {hi:g}] needs "
                                    "0 < min < max (斤/亩)")
            slo, shi = (2 * x for x in c.plausible_kg_per_mu)  # kg/亩 → 斤/亩
            if not lo <= slo <= shi <= hi:
                raise SettingsError(f"{path}: crop {c.id}: the simulator's plausible_kg_per_mu ({slo:g}–{shi:g} "
                                    f"斤/亩) must lie inside record_jin_per_mu [{lo:g}, {hi:g}], or the demo's own "
                                    "harvests would be refused as implausible_yield")
        if not metrics or not crops:
            raise SettingsError(f"{path}: needs at least one [metrics.*] and one [crops.*] entry")
        return cls(metrics, crops)


def _decimals(path: Path, metric: str, entry: dict[str, object]) -> int:
    """Optional (1 by default); a whole number 0–6, so a typo never turns 3.85 V into 3.850000 V."""
    raw = entry.get("decimals", 1)
    if not isinstance(raw, int) or isinstance(raw, bool) or not 0 <= raw <= 6:
        raise SettingsError(f"{path}: metric {metric}: decimals must be a whole number 0–6, not {raw!r}")
    return raw


def _record_range(path: Path, crop: str, entry: dict[str, object]) -> tuple[float, float]:
    """Required for every crop: a crop without a 单产 range would take any typo as a harvest."""
    raw = entry.get("record_jin_per_mu")
    if (not isinstance(raw, list) or len(raw) != 2
            or not all(isinstance(x, int | float) and not isinstance(x, bool) for x in raw)):
        raise SettingsError(f"{path}: crop {crop}: record_jin_per_mu must be [min, max] in 斤/亩 "
                            f"(the 单产 a harvest record may claim), not {raw!r}")
    return float(raw[0]), float(raw[1])
