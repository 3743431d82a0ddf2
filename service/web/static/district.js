/* District page: one season card per township-level unit, a comparison chart and the district's totals. */
"use strict";

(() => {
  const { page, T } = NY;
  const code = page.region.code;
  const w = (jin) => (jin === null || jin === undefined ? null : +(jin / 1e4).toFixed(1));

  function compare(data) {
    const kids = page.children;
    const target = (c) => (page.targets[c] ? w(page.targets[c].yield) : null);
    const before = (c) => { const g = NY.groupOf(data.yBefore, c); return g ? w(g.yield) : null; };
    const now = (c) => { const g = NY.groupOf(data.yNow, c); return g ? w(g.yield) : 0; };
    NY.chart(document.getElementById("chart-townships"), {
      grid: { left: 48, right: 8, top: 36, bottom: 56 },
      legend: { top: 0, textStyle: { fontSize: 11 } },
      tooltip: { trigger: "axis", valueFormatter: (v) => `${NY.num(v, 1)} ${T.wan_jin}` },
      xAxis: { type: "category", data: kids.map((c) => page.names[c]), axisLabel: { interval: 0, rotate: 30, fontSize: 11 } },
      yAxis: { type: "value", name: T.wan_jin },
      series: [
        { type: "bar", name: T.this_season, data: kids.map(now), itemStyle: { color: "#2e7d32" } },
        { type: "bar", name: T.last_season, data: kids.map(before), itemStyle: { color: "#a5d6a7" } },
        { type: "bar", name: T.target, data: kids.map(target), itemStyle: { color: "#ffcc80" } },
      ],
    });
  }

  NY.every60(async (now) => {
    const data = await NY.cardData(code, "township", now);
    for (const child of page.children) {
      NY.fillCard(document.getElementById(`card-${child}`), NY.cardFacts(data, child));
    }
    compare(data);
    NY.fillTotals(document.getElementById("totals"), data.yNow.total, page.targets[code]);
  });
})();
