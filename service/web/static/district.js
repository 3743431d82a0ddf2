/* District page: one season card per township-level unit, a comparison chart and the district's totals. */
"use strict";

(() => {
  const { page, T, F } = NY;
  const code = page.region.code;
  const scale = F.axisScale("jin");  // 万斤 in Chinese, million jin in English
  const w = (jin) => (jin === null || jin === undefined ? null : +(jin / scale.div).toFixed(2));

  function compare(data) {
    const kids = page.children;
    const target = (c) => (page.targets[c] ? w(page.targets[c].yield) : null);
    const before = (c) => { const g = NY.groupOf(data.yBefore, c); return g ? w(g.yield) : null; };
    const now = (c) => { const g = NY.groupOf(data.yNow, c); return g ? w(g.yield) : 0; };
    NY.chart(document.getElementById("chart-townships"), {
      grid: { left: 48, right: 8, top: 36, bottom: 56 },
      legend: { top: 0, textStyle: { fontSize: 11 } },
      tooltip: { trigger: "axis", valueFormatter: (v) => `${NY.num(v, 2)} ${scale.name}` },
      xAxis: { type: "category", data: kids.map((c) => page.names[c]), axisLabel: { interval: 0, rotate: 30, fontSize: 11 } },
      yAxis: { type: "value", min: 0, name: scale.name },
      series: [
        { type: "bar", name: T.this_season, data: kids.map(now), itemStyle: { color: "#2e7d32" } },
        { type: "bar", name: T.last_season, data: kids.map(before), itemStyle: { color: "#a5d6a7" } },
        { type: "bar", name: T.target, data: kids.map(target), itemStyle: { color: "#ffcc80" } },
      ],
    });
  }

  // wettest first, as the API lists them; one colour per grade (the chips' colours in nongyun.css)
  const GRADES = ["过多", "适宜", "轻度不足", "不足", "严重不足"];
  const GRADES_EN = ["excessive", "adequate", "slightly deficient", "deficient", "severely deficient"];
  const GRADE_COLOURS = ["#1565c0", "#2e7d32", "#f9a825", "#ef6c00", "#c62828"];
  const gradeName = (i) => (page.lang === "zh" ? GRADES[i] : GRADES_EN[i]);

  function moistureCounts(total) {
    const row = document.getElementById("moisture-counts");
    const parts = GRADES.map((g, i) => [gradeName(i), total.stations[g] || 0, g,
      `grade-${GRADES_EN[i].replace(/ /g, "-")}`]);
    parts.push([T.moisture_frozen, total.frozen, "frozen", "grade-frozen"]);
    parts.push([T.moisture_ungraded, total.missing + total.anomalous, "none", "grade-none"]);
    row.replaceChildren(...parts.map(([label, n, key, cls]) => {
      const span = document.createElement("span");
      span.className = `grade-chip ${cls}`;
      span.dataset.grade = key;
      NY.put(span, `${label} ${F.count(n)}`, n);
      return span;
    }));
  }

  function moistureChart(ans) {
    const el = document.getElementById("chart-moisture");
    const graded = ans.groups.some((g) => Object.values(g.stations).some((n) => n > 0));
    if (!graded) return NY.noData(el, ans.total.frozen ? T.moisture_all_frozen : undefined); // winter: frozen
    return NY.chart(el, {
      grid: { left: 40, right: 8, top: 36, bottom: 56 },
      legend: { top: 0, textStyle: { fontSize: 11 } },
      tooltip: { trigger: "axis" },
      xAxis: { type: "category", data: ans.groups.map((g) => page.names[g.key] || g.name),
        axisLabel: { interval: 0, rotate: 30, fontSize: 11 } },
      yAxis: { type: "value", min: 0, name: T.moisture_stations, minInterval: 1 },
      series: GRADES.map((g, i) => ({ type: "bar", stack: "grade", name: gradeName(i),
        data: ans.groups.map((x) => x.stations[g] || 0), itemStyle: { color: GRADE_COLOURS[i] } })),
    });
  }

  NY.every60(async (now) => {
    const [data, moisture] = await Promise.all([NY.cardData(code, "township", now),
      NY.api("/api/v1/moisture", { region: code, group_by: "township" })]);
    moistureCounts(moisture.total);
    moistureChart(moisture);
    for (const child of page.children) {
      NY.fillCard(document.getElementById(`card-${child}`), NY.cardFacts(data, child));
    }
    compare(data);
    NY.fillTotals(document.getElementById("totals"), data.yNow.total, page.targets[code]);
  });
})();
