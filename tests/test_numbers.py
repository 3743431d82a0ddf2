"""How figures read on screen (service/web/static/numbers.js, run by node) and the catalogue's decimals
per metric that it takes: 万/亿 at the right boundaries, the exact figure kept, English unit words."""

from __future__ import annotations

import json
import shutil
import subprocess
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.catalogue import Catalogue
from service.errors import SettingsError

REPO = Path(__file__).resolve().parents[1]
NUMBERS_JS = REPO / "service" / "web" / "static" / "numbers.js"
NODE = shutil.which("node")

RUN = """
const src = require("fs").readFileSync(process.argv[1], "utf8");
const Numbers = new Function(src + "; return Numbers;")();
const { lang, metrics, calls } = JSON.parse(require("fs").readFileSync(0, "utf8"));
const F = Numbers.forLang(lang, metrics);
process.stdout.write(JSON.stringify(calls.map(([fn, ...args]) => (fn === "niceCeil" ? Numbers.niceCeil(...args)
  : F[fn](...args)))));
"""


def js(lang: str, calls: list[list[object]], metrics: dict[str, object] | None = None) -> list[object]:
    if NODE is None:
        pytest.skip("node is not installed (the pages' scripts are checked with it)")
    out = subprocess.run([NODE, "-e", RUN, str(NUMBERS_JS)], input=json.dumps(
        {"lang": lang, "metrics": metrics or {}, "calls": calls}), capture_output=True, text=True, check=True,
        timeout=60)
    result: list[object] = json.loads(out.stdout)
    return result


def round2(x: float, places: int) -> float:
    """Intl.NumberFormat rounds the double's exact value half away from zero (ECMA-402 "halfExpand")."""
    return float(Decimal(x).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP))


def short_zh(v: float, digits: int = 0) -> str:
    """The rule, written again in Python: the largest of 亿/万 the figure reaches, also once rounded below."""
    a = abs(v)
    if a >= 1e8 or round2(a / 1e4, 2) >= 1e4:
        return f"{round2(v / 1e8, 2):,.2f}亿"
    if a >= 1e4 or round2(a, digits) >= 1e4:
        return f"{round2(v / 1e4, 2):,.2f}万"
    return f"{round2(v, digits):,.{digits}f}"


def test_the_issue_figures_read_as_a_chinese_reader_expects() -> None:
    got = js("zh", [["bigText", 220312067, "jin"], ["bigText", 200306.3, "mu", 1], ["count", 7648],
                    ["big", 220312067, "jin"], ["bigText", 99999999, "jin"], ["bigText", 9999.6, "jin"],
                    ["bigText", 9999.4, "jin"], ["bigText", None, "jin"], ["num", -0.01, 1]])
    assert got[:3] == ["2.20亿斤", "20.03万亩", "7,648"]
    assert got[3] == {"text": "2.20亿", "unit": "斤", "exact": "220,312,067斤", "short": True}
    assert got[4:] == ["1.00亿斤", "1.00万斤", "9,999斤", "—", "0.0"]  # never 10,000.00万, never -0.0


def test_english_uses_unit_words_millions_and_half_width_brackets() -> None:
    got = js("en", [["bigText", 220312067, "jin"], ["bigText", 200306.3, "mu", 1],
                    ["withUnit", "1,101", "jin_per_mu"], ["paren", "Output", "million jin"], ["axisScale", "jin"],
                    ["bigText", 999999999, "jin"]])
    assert got == ["220.31 million jin", "200,306.3 mu", "1,101 jin/mu", "Output (million jin)",
                   {"div": 1e6, "name": "million jin"}, "1.00 billion jin"]
    assert js("zh", [["paren", "产量", "万斤"], ["axisScale", "jin"]]) == ["产量（万斤）", {"div": 1e4, "name": "万斤"}]


def test_metric_decimals_come_from_the_catalogue() -> None:
    cat = Catalogue.load(REPO / "config" / "catalogue.toml")
    metrics = {m.id: {"unit": m.unit, "decimals": m.decimals} for m in cat.metrics.values()}
    assert [cat.metrics[m].decimals for m in ("battery", "soil_ec", "light")] == [2, 2, 0]
    got = js("zh", [["metricText", "battery", 3.85], ["metricText", "battery", 3.9], ["metricText", "soil_ec", 0.134],
                    ["metricText", "light", 0], ["metricText", "light", 12345.6], ["metricText", "nothing", 2.25]],
             metrics)
    assert got == ["3.85 V", "3.90 V", "0.13 dS/m", "0 lux", "12,346 lux", "2.3"]


def test_a_catalogue_decimals_typo_is_refused(tmp_path: Path) -> None:
    text = (REPO / "config" / "catalogue.toml").read_text(encoding="utf-8")
    bad = tmp_path / "catalogue.toml"
    bad.write_text(text.replace("decimals = 2", 'decimals = "2"', 1), encoding="utf-8")
    with pytest.raises(SettingsError, match=r"decimals must be a whole number 0–6"):
        Catalogue.load(bad)
    bad.write_text(text.replace("decimals = 2", "decimals = 9", 1), encoding="utf-8")
    with pytest.raises(SettingsError, match=r"not 9"):
        Catalogue.load(bad)
    bad.write_text("\n".join(line for line in text.splitlines() if not line.startswith("decimals")), encoding="utf-8")
    assert {m.decimals for m in Catalogue.load(bad).metrics.values()} == {1}  # optional: one place by default


@settings(max_examples=25, deadline=None)
@given(st.lists(st.one_of(st.floats(min_value=0, max_value=1e12, allow_nan=False),
                          st.sampled_from([9999.5, 9999.49, 1e4, 99_999_949.0, 99_999_950.0, 1e8])),
                min_size=1, max_size=40))
def test_short_form_boundaries_and_the_exact_title(values: list[float]) -> None:
    got = js("zh", [["big", v, "jin"] for v in values])
    for v, b in zip(values, got, strict=True):
        assert isinstance(b, dict)
        assert b["text"] == short_zh(v), v
        assert b["exact"] == f"{round2(v, 0):,.0f}斤", v  # the hover keeps every 斤


@given(st.floats(min_value=1e-6, max_value=1e9, allow_nan=False))
@settings(max_examples=15, deadline=None)
def test_nice_axis_end_covers_the_value(x: float) -> None:
    (end,) = js("zh", [["niceCeil", x]])
    assert isinstance(end, float | int)
    assert x * (1 - 1e-9) <= end <= x * 1.25 * (1 + 1e-9), (x, end)
