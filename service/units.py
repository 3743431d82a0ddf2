"""Chinese agricultural units and SI, both ways. Stored data is SI (kg, ha); people read 斤 and 亩.

1 斤 = 0.5 kg and 1 亩 = 1/15 ha exactly, so conversions are plain multiplications and
per-area yields convert by the ratio of the two: 1 kg/ha = 2 斤 / 15 亩 = 2/15 斤/亩.
"""

from __future__ import annotations

from typing import Literal

UnitSystem = Literal["cn", "si"]

JIN_PER_KG = 2.0
MU_PER_HA = 15.0

UNIT_LABELS: dict[UnitSystem, dict[str, str]] = {
    "cn": {"area": "亩", "yield": "斤", "yield_per_area": "斤/亩"},
    "si": {"area": "ha", "yield": "kg", "yield_per_area": "kg/ha"},
}


def jin_to_kg(jin: float) -> float:
    return jin / JIN_PER_KG


def kg_to_jin(kg: float) -> float:
    return kg * JIN_PER_KG


def mu_to_ha(mu: float) -> float:
    return mu / MU_PER_HA


def ha_to_mu(ha: float) -> float:
    return ha * MU_PER_HA


def kg_per_ha_to_jin_per_mu(kg_per_ha: float) -> float:
    return kg_per_ha * JIN_PER_KG / MU_PER_HA


def area_out(ha: float, unit: UnitSystem) -> float:
    return ha_to_mu(ha) if unit == "cn" else ha


def yield_out(kg: float, unit: UnitSystem) -> float:
    return kg_to_jin(kg) if unit == "cn" else kg


def per_area(yield_kg: float, area_ha: float, unit: UnitSystem) -> float | None:
    """Area-weighted yield of a group: Σyield / Σarea, never a mean of per-plot ratios."""
    if area_ha <= 0:
        return None
    return yield_out(yield_kg, unit) / area_out(area_ha, unit)
