/* Township page: its own card, the village table, 7-day charts, offline stations and lagging villages. */
"use strict";

(() => {
  const { page, T, F, api, iso, num, pct, put, field, DAY } = NY;
  const code = page.region.code;
  const names = page.names;
  const villageTargets = page.targets;


  /** A table cell of 斤 or 亩: the short form (12.35万; the column head names the unit), exact on hover. */
  function bigCell(el, raw, unit, digits) {
    if (!el) return;
    const b = F.big(raw, unit, digits);
    put(el, b.text, raw);
    el.title = b.exact;
  }

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
        bigCell(field(row, "yield"), g.yield, "jin", 0);
        bigCell(field(row, "area"), g.area, "mu", 1);
        put(field(row, "yield_per_area"), num(g.yield_per_area, 0), g.yield_per_area);
        const progress = target && target.yield ? g.yield / target.yield : null;
        put(field(row, "yield_target"), target && target.yield ? pct(progress) : "—", progress);
      }
      if (v !== code) {
        const soil = NY.lastValue(NY.seriesOf(days7.soilToday, v));
        const temp = NY.lastValue(NY.seriesOf(days7.tempToday, v));
        put(field(row, "soil_moisture"), soil === null ? "—" : `${F.metricNum("soil_moisture", soil)} %`, soil);
        put(field(row, "air_temp"), temp === null ? "—" : `${F.metricNum("air_temp", temp)} °C`, temp);
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

  /** Per local day of the week, each station's total averaged over the township's stations that reported. */
  function rainByDay(rain7, devices, week) {
    const mine = new Set(devices.filter((d) => NY.under(d.village, code)).map((d) => d.id));
    const days = Array.from({ length: 7 }, (_, i) => NY.dayStart(week + i * DAY + DAY / 2));
    const totals = days.map(() => []);
    for (const s of rain7.series.filter((x) => mine.has(x.key))) {
      for (const [t, v] of s.points) {
        const i = days.indexOf(NY.dayStart(Date.parse(t)));
        if (i >= 0 && v !== null) totals[i].push(v);
      }
    }
    return { days, means: totals.map((xs) => NY.mean(xs)) };
  }

  function rainChart(rain7, devices, week) {
    const el = document.getElementById("chart-rain");
    const { days, means } = rainByDay(rain7, devices, week);
    if (means.every((m) => m === null)) return NY.noData(el);
    if (means.every((m) => !m)) return NY.noData(el, T.no_rain);  // every station reported, none saw rain
    delete el.dataset.empty;
    return NY.chart(el, {
      grid: { left: 44, right: 12, top: 24, bottom: 28 },
      tooltip: { trigger: "axis", valueFormatter: (v) => (v === null ? "—" : `${F.metricNum("rainfall", v)} mm`) },
      xAxis: { type: "category", data: days.map((d) => NY.fmtTime(d).slice(0, 5)) },
      yAxis: { type: "value", min: 0, name: "mm", minInterval: 0.1 },
      series: [{ type: "bar", name: T.rain_7d_daily, itemStyle: { color: "#1565c0" },
        data: means.map((m) => (m === null ? null : +m.toFixed(2))) }],
    });
  }

  /** Output bars (万斤 / million jin, from zero) and 亩产 on a second axis from zero that always reaches
      the target, so the dashed target line is on the chart and 1,063 vs 1,128 looks as close as it is. */
  function yieldChart(byVillage) {
    const groups = byVillage.groups.filter((g) => g.records > 0);
    const el = document.getElementById("chart-yield");
    if (!groups.length) return NY.noData(el);
    const perMuTarget = page.targets[code] && page.targets[code].yield_per_area;
    const scale = F.axisScale("jin");
    const perMu = groups.map((g) => g.yield_per_area);
    const perMuMax = Numbers.niceCeil(Math.max(...perMu.filter((v) => v !== null), perMuTarget || 0) * 1.05);
    const perMuUnit = F.unitWord("jin_per_mu");
    return NY.chart(el, {
      grid: { left: 52, right: 52, top: 60, bottom: 72 },  // the legend above, the axes' unit names below it
      legend: { top: 0, textStyle: { fontSize: 11 } },
      tooltip: { trigger: "axis" },
      xAxis: { type: "category", data: groups.map((g) => names[g.key] || g.name),
        axisLabel: { rotate: 45, fontSize: 10 } },
      yAxis: [{ type: "value", min: 0, name: scale.name },
        { type: "value", min: 0, max: perMuMax, name: perMuUnit, splitLine: { show: false } }],
      series: [
        { type: "bar", name: F.paren(T.output, scale.name), data: groups.map((g) => +(g.yield / scale.div).toFixed(2)),
          itemStyle: { color: "#2e7d32" }, tooltip: { valueFormatter: (v) => `${num(v, 2)} ${scale.name}` } },
        { type: "line", name: F.paren(T.per_mu, perMuUnit), yAxisIndex: 1,
          data: perMu, itemStyle: { color: "#ef6c00" },
          tooltip: { valueFormatter: (v) => F.withUnit(num(v, 0), "jin_per_mu") },
          markLine: perMuTarget ? { symbol: "none", lineStyle: { type: "dashed", color: "#c62828" },
            label: { formatter: T.target_value.replace("{v}", num(perMuTarget, 0)), position: "insideEndTop" },
            data: [{ yAxis: +perMuTarget.toFixed(0) }] } : undefined },
      ],
    });
  }

  function charts(now, soil7, temp7, rain7, devices, byVillage, week) {
    const opts = { names, spanMs: 7 * DAY };
    NY.lineChart(document.getElementById("chart-soil"), soil7.series, { ...opts, unit: "%", metric: "soil_moisture" });
    NY.lineChart(document.getElementById("chart-temp"), temp7.series, { ...opts, unit: "°C", metric: "air_temp" });
    rainChart(rain7, devices, week);
    yieldChart(byVillage);
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
    charts(now, soil7, temp7, rain7, data.devices, data.byVillage, week);
  });
})();
