"""Yield totals as people read them: 亩/斤 or ha/kg, rounded to 2 decimals, the per-area ratio last.

The API's answers and the exported spreadsheets both show totals through here, so a township's
spreadsheet never disagrees with the API by a rounding.
"""

from __future__ import annotations

from typing import Any

from ..queries.yields import Totals
from ..units import UnitSystem, area_out, per_area, yield_out


def totals_json(t: Totals, unit: UnitSystem) -> dict[str, Any]:
    """``{records, area, yield, yield_per_area}``: the ratio from the unrounded sums (area-weighted)."""
    ratio = per_area(t.yield_kg, t.area_ha, unit)
    return {"records": t.records, "area": round(area_out(t.area_ha, unit), 2),
            "yield": round(yield_out(t.yield_kg, unit), 2),
            "yield_per_area": round(ratio, 2) if ratio is not None else None}
