/* nongyun number formatting: the one place that decides how a figure reads on screen, so a card, a
 * table and a chart tooltip never write the same 斤 three ways. Pure: no DOM, no API, the language
 * and the metric catalogue (unit, decimals) are passed in.
 *
 * Chinese readers count large 斤 and 亩 in 万 and 亿 (2.20亿斤, 20.03万亩); English readers get
 * million/billion and English unit words (jin, mu). The exact figure always travels with the short
 * one (an element's title on hover, its data-value for tests and scripts); exports keep exact cells. */
"use strict";

const Numbers = (() => {
  const UNITS = {  // quantity → [zh word, en word]
    jin: ["斤", "jin"],
    mu: ["亩", "mu"],
    jin_per_mu: ["斤/亩", "jin/mu"],
  };
  // the steps of the short form: [threshold, divisor, zh suffix, en suffix], largest first
  const STEPS = { zh: [[1e8, 1e8, "亿"], [1e4, 1e4, "万"]], en: [[1e9, 1e9, " billion"], [1e6, 1e6, " million"]] };
  // a chart axis of large quantities counts in one step for every bar: 万 in Chinese, millions in English
  const AXIS = { zh: { div: 1e4, prefix: "万" }, en: { div: 1e6, prefix: "million " } };

  /** A formatter set for one page language and the metric catalogue ({id: {unit, decimals}}). */
  function forLang(lang, metrics) {
    const zh = lang === "zh";
    const locale = zh ? "zh-CN" : "en-US";
    const cache = {};
    const catalogue = metrics || {};

    function num(v, digits = 1) {
      if (v === null || v === undefined || typeof v !== "number" || !Number.isFinite(v)) return "—";
      cache[digits] = cache[digits] || new Intl.NumberFormat(locale, {
        minimumFractionDigits: digits, maximumFractionDigits: digits,
      });
      const shown = Math.abs(v) < 0.5 * 10 ** -digits ? 0 : v; // never "-0.0 °C"
      return cache[digits].format(shown);
    }
    const count = (n) => num(n, 0);

    function unitWord(unit) {
      const pair = UNITS[unit];
      return pair ? pair[zh ? 0 : 1] : unit || "";
    }
    /** "数值 单位": Chinese writes 斤 and 亩 straight after the number, English leaves a space. */
    function withUnit(text, unit) {
      const word = unitWord(unit);
      if (!word || text === "—") return text;
      return zh && UNITS[unit] ? text + word : `${text} ${word}`;
    }

    /** The step a figure reads in: the largest it reaches, also once rounded in the step below, so
        99,999,999 reads 1.00亿, never 10,000.00万 (nor 9,999.6 斤 as 10,000). */
    function stepOf(v, digits) {
      const steps = STEPS[zh ? "zh" : "en"];
      const a = Math.abs(v);
      return steps.find(([at], i) => {
        const below = steps[i + 1];
        const div = below ? below[1] : 1;
        const places = below ? 2 : digits;
        // rounded exactly as it would be shown (zh-CN and en-US both group with "," and mark decimals with ".")
        return a >= at || Number(num(a / div, places).replace(/,/g, "")) * div >= at;
      });
    }
    /** A large 斤 or 亩 figure in its short form: {text: "2.20亿", unit: "斤", exact: "220,312,067 斤"}. */
    function big(v, unit, digits = 0) {
      const exact = withUnit(num(v, digits), unit);
      if (v === null || v === undefined || !Number.isFinite(v)) return { text: "—", unit: unitWord(unit), exact: "" };
      const step = stepOf(v, digits);
      const text = step ? num(v / step[1], 2) + step[2] : num(v, digits);
      return { text, unit: unitWord(unit), exact, short: Boolean(step) };
    }
    const bigText = (v, unit, digits = 0) => { const b = big(v, unit, digits); return withUnit(b.text, unit); };

    /** The decimals the catalogue gives a metric (battery 2, soil EC 2, light 0, ...), 1 when unlisted. */
    const decimals = (metric) => {
      const d = catalogue[metric] && catalogue[metric].decimals;
      return Number.isInteger(d) ? d : 1;
    };
    const metricNum = (metric, v) => num(v, decimals(metric));
    function metricText(metric, v) {
      const text = metricNum(metric, v);
      const unit = (catalogue[metric] && catalogue[metric].unit) || "";
      return text === "—" || !unit ? text : `${text} ${unit}`;
    }

    function pct(r, signed) {
      if (r === null || r === undefined || !Number.isFinite(r)) return "—";
      const s = num(r * 100, 1) + "%";
      return signed && r > 0 ? "+" + s : s;
    }

    /** "标签（单位）" in Chinese, "Label (unit)" in English: never full-width brackets in English text. */
    const paren = (label, inner) => (inner ? (zh ? `${label}（${inner}）` : `${label} (${inner})`) : label);

    /** The scale of a chart axis of 斤: {div, name: "万斤" | "million jin"}; values are v / div. */
    function axisScale(unit) {
      const a = AXIS[zh ? "zh" : "en"];
      return { div: a.div, name: a.prefix + unitWord(unit) };
    }

    return { lang, num, count, big, bigText, unitWord, withUnit, decimals, metricNum, metricText, pct, paren,
      axisScale };
  }

  /** An axis end: the smallest "nice" number (1, 1.2, 1.4, … 7, 8 × 10ⁿ) at or above x, at most a quarter above. */
  function niceCeil(x) {
    if (!(x > 0) || !Number.isFinite(x)) return 1;
    const p = 10 ** Math.floor(Math.log10(x));
    for (const m of [1, 1.2, 1.4, 1.5, 1.6, 1.8, 2, 2.5, 3, 3.5, 4, 5, 6, 7, 8, 10]) {
      if (m * p >= x * (1 - 1e-12)) return +(m * p).toPrecision(12);
    }
    return 10 * p;
  }

  return { forLang, niceCeil };
})();
