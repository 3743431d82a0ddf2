/* Township page: its own card, the village table, 7-day charts, offline stations and lagging villages. */
"use strict";

(() => {
  const { page, T, api, iso, num, pct, put, field, DAY } = NY;
  const code = page.region.code;
  const names = page.names;
  const villageTargets = page.targets;


  function villageTable(data, days7, moisture) {
    const rows = document.querySelectorAll("#village-table tbody tr, #village-table tfoot tr");
    const grades = Object.fromEntries(moisture.groups.map((g) => [g.key, g]));
    for (const row of rows) {
      const v = row.dataset.code;
      NY.gradeChip(field(row, "moisture"), v === code ? moisture.total : grades[v]);
      const mine = data.devices.filter((d) => NY.under(d.village, v));
      const online = mine.filter((d) => d.online).length;
      put(field(row, "devices"), `${online}/${mine.length}`, `${online}/${mine.length}`);
      const g = v === code ? data.yNow.total : NY.groupOf(data.byVillage, v);
      const target = v === code ? page.targets[code] : villageTargets[v];
      if (g) {
        put(field(row, "yield"), num(g.yield, 0), g.yield);
        put(field(row, "area"), num(g.area, 1), g.area);
        put(field(row, "yield_per_area"), num(g.yield_per_area, 0), g.yield_per_area);
        const progress = target && target.yield ? g.yield / target.yield : null;
        put(field(row, "yield_target"), target && target.yield ? pct(progress) : "—", progress);
      }
      if (v !== code) {
        const soil = NY.lastValue(NY.seriesOf(days7.soilToday, v));
        const temp = NY.lastValue(NY.seriesOf(days7.tempToday, v));
        put(field(row, "soil_moisture"), soil === null ? "—" : `${num(soil, 1)} %`, soil);
        put(field(row, "air_temp"), temp === null ? "—" : `${num(temp, 1)} °C`, temp);
      }
    }
  }

  function offlineTable(devices) {
    const body = document.querySelector("#offline-table tbody");
    const off = devices.filter((d) => d.kind === "station" && !d.online)
      .sort((a, b) => (a.last_seen || "").localeCompare(b.last_seen || ""));
    body.replaceChildren(...off.map((d) => {
      const tr = document.createElement("tr");
      tr.dataset.device = d.id;
      tr.innerHTML = `<th><a></a></th><td></td><td></td>`;
      tr.querySelector("a").href = `/d/${encodeURIComponent(d.id)}`;
      tr.querySelector("a").textContent = d.id;
      tr.children[1].textContent = names[d.village] || d.village;
      tr.children[2].textContent = NY.fmtTime(d.last_seen);
      return tr;
    }));
    if (!off.length) {
      const tr = document.createElement("tr");
      tr.innerHTML = `<td colspan="3" class="muted"></td>`;
      tr.firstChild.textContent = T.all_online;
      body.append(tr);
    }
  }

  function lagging(byVillage) {
    const list = document.getElementById("lagging");
    const rows = page.children.filter((v) => villageTargets[v] && villageTargets[v].yield > 0).map((v) => {
      const g = NY.groupOf(byVillage, v);
      return { v, progress: (g ? g.yield : 0) / villageTargets[v].yield };
    }).filter((r) => r.progress < 1).sort((a, b) => a.progress - b.progress);
    list.replaceChildren(...rows.map((r) => {
      const li = document.createElement("li");
      li.dataset.code = r.v;
      li.innerHTML = `<a></a><span class="bar"><span></span></span><b></b>`;
      li.querySelector("a").href = `/r/${r.v}`;
      li.querySelector("a").textContent = names[r.v] || r.v;
      li.querySelector(".bar span").style.width = `${Math.min(100, r.progress * 100)}%`;
      put(li.querySelector("b"), pct(r.progress), r.progress);
      return li;
    }));
    if (!rows.length) {
      const li = document.createElement("li");
      li.className = "muted";
      li.textContent = T.no_data;
      list.append(li);
    }
  }

  function charts(now, soil7, temp7, rain7, devices, byVillage) {
    const opts = { names, spanMs: 7 * DAY };
    NY.lineChart(document.getElementById("chart-soil"), soil7.series, { ...opts, unit: "%" });
    NY.lineChart(document.getElementById("chart-temp"), temp7.series, { ...opts, unit: "°C" });
    const rain = page.children.map((v) => NY.rainOf(rain7, devices, v));
    const withRain = page.children.map((v, i) => [v, rain[i]]).filter(([, r]) => r !== null);
    const rainEl = document.getElementById("chart-rain");
    if (withRain.length) {
      NY.chart(rainEl, {
        grid: { left: 44, right: 12, top: 16, bottom: 72 },
        tooltip: { trigger: "axis", valueFormatter: (v) => `${num(v, 1)} mm` },
        xAxis: { type: "category", data: withRain.map(([v]) => names[v]), axisLabel: { rotate: 45, fontSize: 10 } },
        yAxis: { type: "value", name: "mm" },
        series: [{ type: "bar", data: withRain.map(([, r]) => +r.toFixed(2)), itemStyle: { color: "#1565c0" } }],
      });
    } else NY.noData(rainEl);
    const groups = byVillage.groups.filter((g) => g.records > 0);
    const yieldEl = document.getElementById("chart-yield");
    if (!groups.length) return NY.noData(yieldEl);
    const perMuTarget = page.targets[code] && page.targets[code].yield_per_area;
    NY.chart(yieldEl, {
      grid: { left: 52, right: 52, top: 40, bottom: 72 },
      legend: { top: 0, textStyle: { fontSize: 11 } },
      tooltip: { trigger: "axis" },
      xAxis: { type: "category", data: groups.map((g) => names[g.key] || g.name), axisLabel: { rotate: 45, fontSize: 10 } },
      yAxis: [{ type: "value", name: T.wan_jin }, { type: "value", name: T.unit_jin_per_mu, scale: true }],
      series: [
        { type: "bar", name: `${T.output}（${T.wan_jin}）`, data: groups.map((g) => +(g.yield / 1e4).toFixed(2)),
          itemStyle: { color: "#2e7d32" } },
        { type: "line", name: `${T.per_mu}（${T.unit_jin_per_mu}）`, yAxisIndex: 1,
          data: groups.map((g) => g.yield_per_area), itemStyle: { color: "#ef6c00" },
          markLine: perMuTarget ? { symbol: "none", label: { formatter: T.target }, lineStyle: { type: "dashed" },
            data: [{ yAxis: +perMuTarget.toFixed(0) }] } : undefined },
      ],
    });
    return null;
  }

  NY.every60(async (now) => {
    const today = NY.dayStart(now);
    const week = NY.dayStart(now) - 6 * DAY;
    const q = (metric, extra) => api("/api/v1/readings", Object.assign(
      { region: code, metric, group_by: "village", agg: "mean", end: iso(now) }, extra));
    const [data, soilToday, tempToday, soil7, temp7, rain7, moisture] = await Promise.all([
      NY.cardData(code, "township", now),
      q("soil_moisture", { start: iso(today), every: "1d" }),
      q("air_temp", { start: iso(today), every: "1d" }),
      q("soil_moisture", { start: iso(week), every: "3h" }),
      q("air_temp", { start: iso(week), every: "3h" }),
      api("/api/v1/readings", { region: code, metric: "rainfall", start: iso(week), end: iso(now),
        every: "1d", agg: "sum", group_by: "device" }),
      api("/api/v1/moisture", { region: code, group_by: "village" }),
    ]);
    NY.fillCard(document.getElementById(`card-${code}`), NY.cardFacts(data, code));
    villageTable(data, { soilToday, tempToday }, moisture);
    offlineTable(data.devices);
    lagging(data.byVillage);
    charts(now, soil7, temp7, rain7, data.devices, data.byVillage);
  });
})();
