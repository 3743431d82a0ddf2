"""Figures as people read them: 亩/斤 or ha/kg, rounded half up (四舍五入), the per-area ratio last.

Chinese statistical tables round half up, and Python's ``round`` rounds the binary float half to
even (``round(0.125, 2) == 0.12``, and 2.675 is stored as 2.67499...). ``half_up`` rounds the
shortest decimal that names the float (``repr``), which is the number the field sent and a reader
would write down, so 0.125 → 0.13 and 2.675 → 2.68. Sums are always taken before rounding. The
API's answers and the exported spreadsheets both show figures through here, so a township's
spreadsheet never disagrees with the API by a rounding.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from ..queries.yields import Totals
from ..units import UnitSystem, area_out, per_area, yield_out


def half_up(value: float, places: int = 2) -> float:
    """``value`` rounded to ``places`` decimals, halves away from zero (四舍五入)."""
    return float(Decimal(repr(value)).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP))


def half_up_or_none(value: float | None, places: int = 2) -> float | None:
    return None if value is None else half_up(value, places)


def totals_json(t: Totals, unit: UnitSystem) -> dict[str, Any]:
    """``{records, area, yield, yield_per_area}``: the ratio from the unrounded sums (area-weighted)."""
    return {"records": t.records, "area": half_up(area_out(t.area_ha, unit)),
            "yield": half_up(yield_out(t.yield_kg, unit)),
            "yield_per_area": half_up_or_none(per_area(t.yield_kg, t.area_ha, unit))}
