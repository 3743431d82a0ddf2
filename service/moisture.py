"""墒情 grading on relative moisture: pure functions, thresholds passed in (config/soils.toml).

A county 农技中心 does not read "23.4 % vol": the same water is plenty in a sand and short in a
clay, so every grade is taken on relative moisture (土壤相对含水量, volumetric ÷ field capacity).
Boundaries are inclusive on the dry side — a grade's range holds its upper bound, so exactly 60 %
is 轻度不足 and 轻旱 — which is how DESIGN.md writes them (严重不足 ≤ 40, 过多 > 90). Frozen soil comes
first (a probe reads only the liquid water, so a frozen field looks dry), then the anomaly bounds.
Grades are taken on the figure people see (relative moisture to one decimal, rounded half up), so
26.1 % vol on a 29 % soil is "90.0 %, 适宜" and never a 过多 by a float's last bit.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

# Wettest first, the order the dashboards and the brief list them in.
GRADES: tuple[str, ...] = ("过多", "适宜", "轻度不足", "不足", "严重不足")
GRADES_EN: dict[str, str] = {"过多": "excessive", "适宜": "adequate", "轻度不足": "slightly deficient",
                             "不足": "deficient", "严重不足": "severely deficient"}
DROUGHT: tuple[str, ...] = ("无旱", "轻旱", "中旱", "重旱", "特旱")
DROUGHT_EN: dict[str, str] = {"无旱": "none", "轻旱": "light", "中旱": "moderate", "重旱": "severe",
                              "特旱": "extreme"}

State = Literal["graded", "frozen", "anomalous"]


@dataclass(frozen=True)
class Thresholds:
    """Four ascending upper bounds per scale, driest grade first (inclusive: ``rel <= bound``)."""

    moisture: tuple[float, float, float, float] = (40.0, 50.0, 60.0, 90.0)
    drought: tuple[float, float, float, float] = (30.0, 40.0, 50.0, 60.0)
    frozen_soil_temp: float = 0.0  # a day whose mean soil_temp is at or below this is frozen
    anomaly_min: float = 6.0  # relative moisture strictly below: anomalous
    anomaly_max: float = 190.0  # strictly above: anomalous

    def problems(self) -> list[str]:
        """What is wrong with these thresholds, for a SettingsError at start; [] when they are usable."""
        out: list[str] = []
        for name, bounds in (("moisture", self.moisture), ("drought", self.drought)):
            if len(bounds) != 4 or not all(math.isfinite(b) for b in bounds):
                out.append(f"grades.{name} must be 4 finite numbers")
            elif any(b >= c for b, c in itertools.pairwise(bounds)) or bounds[0] <= 0:
                out.append(f"grades.{name} must be positive and strictly ascending, got {list(bounds)}")
        if not 0 <= self.anomaly_min < self.anomaly_max:
            out.append(f"grades.anomaly_min ({self.anomaly_min}) must be ≥ 0 and below anomaly_max "
                       f"({self.anomaly_max})")
        if not -40 <= self.frozen_soil_temp <= 10:
            out.append(f"grades.frozen_soil_temp ({self.frozen_soil_temp}) must lie in −40…10 °C")
        return out


DEFAULT = Thresholds()


def relative_moisture(volumetric_pct: float, field_capacity_pct: float) -> float:
    """土壤相对含水量 in % of field capacity."""
    if field_capacity_pct <= 0:
        raise ValueError(f"field capacity must be positive, got {field_capacity_pct}")
    return volumetric_pct / field_capacity_pct * 100.0


def shown(rel: float) -> float:
    """Relative moisture as reported: one decimal, halves up (四舍五入), from the shortest repr."""
    return float(Decimal(repr(rel)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def _graded(rel: float, bounds: tuple[float, float, float, float], names: tuple[str, ...]) -> str:
    """``names`` wettest first; the first bound (driest) at or above ``rel`` picks the grade."""
    for i, bound in enumerate(bounds):
        if rel <= bound:
            return names[len(names) - 1 - i]
    return names[0]


def grade(rel: float, th: Thresholds = DEFAULT) -> str:
    """The 墒情 grade (one of GRADES) of a relative moisture."""
    return _graded(rel, th.moisture, GRADES)


def drought_grade(rel: float, th: Thresholds = DEFAULT) -> str:
    """The GB/T 32136-2015 drought grade (one of DROUGHT) of a relative moisture."""
    return _graded(rel, th.drought, DROUGHT)


def is_frozen(soil_temp: float | None, th: Thresholds = DEFAULT) -> bool:
    """Frozen when the day's mean soil temperature is at or below the bound; unknown is not frozen."""
    return soil_temp is not None and soil_temp <= th.frozen_soil_temp


def is_anomalous(rel: float, th: Thresholds = DEFAULT) -> bool:
    """Outside [anomaly_min, anomaly_max]: a broken probe or a flooded pit, not a field's moisture."""
    return not th.anomaly_min <= rel <= th.anomaly_max


@dataclass(frozen=True)
class Graded:
    """One station's day: graded (with its grades), or why not."""

    state: State
    relative_pct: float
    grade: str | None = None
    drought: str | None = None


def classify(volumetric_pct: float, field_capacity_pct: float, soil_temp: float | None,
             th: Thresholds = DEFAULT) -> Graded:
    """Frozen before anomalous before graded (a frozen probe's low reading is no anomaly); the
    bounds apply to the figure as shown (``shown``), the returned ``relative_pct`` is unrounded."""
    rel = relative_moisture(volumetric_pct, field_capacity_pct)
    if is_frozen(soil_temp, th):
        return Graded("frozen", rel)
    figure = shown(rel)
    if is_anomalous(figure, th):
        return Graded("anomalous", rel)
    return Graded("graded", rel, grade(figure, th), drought_grade(figure, th))
