/* Shared by the village and device pages: latest value per station and metric, and the per-metric
 * history charts with the 24h/7d/30d/90d picker. */
"use strict";

const History = (() => {
  const { page, T, api, iso } = NY;

  /** Per metric, each device's newest 10-minute value of the last 24 h: {metric: {device: [t, v]}}. */
  async function latest(region, metrics, now) {
    const answers = await Promise.all(metrics.map((metric) => api("/api/v1/readings", {
      region, metric, start: iso(now - NY.DAY), end: iso(now), every: "10m", agg: "mean", group_by: "device",
    })));
    const out = {};
    metrics.forEach((metric, i) => {
      out[metric] = {};
      for (const s of answers[i].series) {
        if (s.points.length) out[metric][s.key] = s.points[s.points.length - 1];
      }
    });
    return out;
  }

  /** Draw one chart per metric for the picked range; ``only`` keeps one device's series. */
  async function draw(region, rangeKey, only) {
    const range = page.ranges[rangeKey];
    const now = Date.now();
    const els = [...document.querySelectorAll("#metric-charts .chart[data-metric]")];
    const answers = await Promise.all(els.map((el) => api("/api/v1/readings", {
      region, metric: el.dataset.metric, start: iso(now - range.ms), end: iso(now), every: range.every,
      agg: el.dataset.metric === "rainfall" ? "sum" : "mean", group_by: "device",
    })));
    els.forEach((el, i) => {
      const series = answers[i].series.filter((s) => !only || s.key === only);
      const metric = el.dataset.metric;
      const unit = (page.metrics[metric] || {}).unit;
      const rain = metric === "rainfall";  // bars from zero; a dry spell says 无降雨 instead of an empty axis
      NY.lineChart(el, series, { unit, metric, spanMs: range.ms, bars: rain, emptyText: rain ? T.no_rain : undefined });
      el.dataset.range = rangeKey;
    });
  }

  return { latest, draw };
})();
