"""四舍五入: displayed and exported figures round half up on the decimal a reader sees (web/figures.py)."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from service.queries.yields import Totals
from service.web.figures import half_up, totals_json


def test_the_cases_binary_rounding_gets_wrong() -> None:
    assert round(0.125, 2) == 0.12 and half_up(0.125) == 0.13
    assert round(2.675, 2) == 2.67 and half_up(2.675) == 2.68
    assert half_up(-0.125) == -0.13  # away from zero, as a table of losses would
    assert half_up(4.0275, 3) == 4.028


@given(st.integers(min_value=-10**9, max_value=10**9), st.integers(min_value=0, max_value=4))
def test_a_half_always_goes_away_from_zero(units: int, places: int) -> None:
    half = Decimal(units * 10 + (5 if units >= 0 else -5)).scaleb(-(places + 1))  # e.g. 12.345 with places=2
    expected = (Decimal(units) + (1 if units >= 0 else -1)).scaleb(-places)
    assert half_up(float(half), places) == float(expected)


@given(st.floats(min_value=-1e9, max_value=1e9, allow_nan=False), st.integers(min_value=0, max_value=4))
def test_never_further_than_half_a_unit_and_idempotent(value: float, places: int) -> None:
    rounded = half_up(value, places)
    assert abs(Decimal(repr(rounded)) - Decimal(repr(value))) <= Decimal(5).scaleb(-(places + 1))
    assert half_up(rounded, places) == rounded


def test_per_area_yield_comes_from_the_unrounded_sums() -> None:
    shown = totals_json(Totals(3, 1 / 15 * 0.3333, 100.0), "cn")  # 0.3333 亩
    assert shown["area"] == 0.33 and shown["yield_per_area"] == half_up(200 / 0.3333)
