/* nongyun dashboards: what every page shares — the API client, number and time formatting in the
 * configured zone, ECharts helpers, the season card and the 60-second refresh loop.
 * Every number on a page comes from /api/v1 (same origin), so it equals what the API answers. */
"use strict";

const NY = (() => {
  const page = JSON.parse(document.getElementById("page-data").textContent);
  const T = page.strings;
  const F = Numbers.forLang(page.lang, page.metrics);  // numbers.js: every figure on the page reads the same way
  const HOUR = 3600e3;
  const DAY = 24 * HOUR;
  const REFRESH_MS = 60e3;
  const PALETTE = ["#2e7d32", "#1565c0", "#ef6c00", "#6a1b9a", "#00838f", "#c62828", "#9e9d24",
    "#4e342e", "#ad1457", "#283593", "#558b2f", "#00695c", "#f9a825", "#5d4037", "#37474f"];

  class ApiError extends Error {
    constructor(status, body) {
      const err = (body && body.error) || {};
      super(err.message || `HTTP ${status}`);
      this.status = status;
      this.code = err.code;
      this.field = err.field;
      this.id = err.id; // a duplicate names the record it repeats
    }
  }

  async function api(path, params) {
    const url = new URL(path, location.origin);
    for (const [k, v] of Object.entries(params || {})) {
      if (v !== undefined && v !== null) url.searchParams.set(k, v);
    }
    const resp = await fetch(url, { headers: { Accept: "application/json" } });
    const body = await resp.json().catch(() => null);
    if (!resp.ok) throw new ApiError(resp.status, body);
    return body;
  }

  /** The session's CSRF token (a meta tag when logging in is required), sent with every POST. */
  function csrfHeader() {
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? { "X-CSRFToken": meta.content } : {};
  }

  /** A change through the API: JSON, or a FormData (a file upload) sent as multipart. */
  async function send(method, path, data) {
    const form = data instanceof FormData;
    const headers = Object.assign(form ? {} : { "Content-Type": "application/json" },
      { Accept: "application/json" }, csrfHeader());
    const resp = await fetch(path, { method, headers, body: form ? data : JSON.stringify(data) });
    const body = await resp.json().catch(() => null);
    if (!resp.ok) throw new ApiError(resp.status, body);
    return body;
  }
  const post = (path, data) => send("POST", path, data);

  /** An API error, or an import row's error, in the page's language: the text for its stable code
      (T.err_<code>, with {field} and {id} filled in) when the page has one, else the server's message. */
  function errorText(err) {
    const text = err.code && T[`err_${err.code}`];
    if (!text) return err.message || String(err.code || "");
    const label = (err.field && (T[err.field] || T[`col_${err.field}`])) || err.field || "";
    return text.replace("{field}", label).replace("{id}", err.id || "");
  }

  // ---- time in the configured zone (the browser's own zone may differ) ----
  const partsFmt = new Intl.DateTimeFormat("en-US", {
    timeZone: page.tz, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit",
  });
  function zoneParts(ms) {
    const p = {};
    for (const { type, value } of partsFmt.formatToParts(new Date(ms))) p[type] = value;
    return p;
  }
  function offsetMs(ms) {
    const p = zoneParts(ms);
    const asUtc = Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour % 24, +p.minute, +p.second);
    return asUtc - Math.floor(ms / 1000) * 1000;
  }
  /** Local midnight (configured zone) of the day holding ms. */
  function dayStart(ms) {
    const off = offsetMs(ms);
    return Math.floor((ms + off) / DAY) * DAY - off;
  }
  const iso = (ms) => new Date(ms).toISOString();
  function fmtTime(value, withYear) {
    if (value === null || value === undefined) return T.never;
    const ms = typeof value === "number" ? value : Date.parse(value);
    const p = zoneParts(ms);
    const date = withYear ? `${p.year}-${p.month}-${p.day}` : `${p.month}-${p.day}`;
    return `${date} ${p.hour}:${p.minute}`;
  }

  // ---- numbers (numbers.js) ----
  const { num, pct } = F;
  const wan = (jin) => F.big(jin, "jin").text;  // the short form: 2,203.12万 (zh), 22.03 million (en)
  const change = (now, before) => (before ? (now - before) / before : null);
  const ratio = (a, b) => (b ? a / b : null);

  /** Write a shown value and keep the API's raw number beside it (tests compare the two). */
  function put(el, text, raw, cls) {
    if (!el) return;
    el.textContent = text;
    if (raw === undefined || raw === null) delete el.dataset.value;
    else el.dataset.value = String(raw);
    if (cls !== undefined) el.className = cls;
  }
  const field = (root, name) => root && root.querySelector(`[data-field="${name}"]`);
  /** A large 斤 or 亩 figure in its short form (2.20亿), the exact one on hover (title), the raw one in
      data-value; the unit word goes into the element's .unit sibling when it has one, else after the number. */
  function putBig(el, raw, unit, digits = 0) {
    if (!el) return;
    const b = F.big(raw, unit, digits);
    const next = el.nextElementSibling;
    const slot = next && next.classList.contains("unit") ? next : null;
    put(el, slot ? b.text : F.withUnit(b.text, unit), raw);
    if (slot) slot.textContent = b.unit;
    el.title = b.exact;
  }
  const trend = (r) => (r === null || r === undefined ? "" : r >= 0 ? "up" : "down");

  // ---- charts ----
  const charts = new Map();
  function chart(el, option) {
    if (!el) return null;
    if (!window.echarts) {  // the installation lacks echarts.min.js: say so instead of a blank panel
      el.textContent = T.charts_missing;
      el.classList.add("chart-missing");
      return null;
    }
    let c = charts.get(el);
    if (!c) {
      c = echarts.init(el, null, { renderer: "canvas" });
      charts.set(el, c);
    }
    c.setOption(Object.assign({ animation: false, color: PALETTE }, option), true);
    el.dataset.drawn = "1";
    return c;
  }
  window.addEventListener("resize", () => charts.forEach((c) => c.resize()));
  /** A chart with nothing to plot says so in words ("暂无数据", "无降雨") instead of an empty axis. */
  function noData(el, text) {
    if (el) el.dataset.empty = text || T.no_data;
    linesNote(el, 0, 0);
    return chart(el, { title: { text: text || T.no_data, left: "center", top: "middle",
      textStyle: { color: "#999", fontSize: 14, fontWeight: "normal" } } });
  }
  const MAX_LINES = 8;  // more lines than this in one panel cannot be told apart: the rest wait in the legend
  /** The note under a panel that shows only its top lines ("显示前 8 个，共 15 个"), or none. */
  function linesNote(el, shown, total) {
    if (!el || !el.parentElement) return;
    let note = el.parentElement.querySelector(".chart-note");
    if (shown >= total) {
      if (note) note.remove();
      return;
    }
    if (!note) {
      note = document.createElement("p");
      note.className = "chart-note";
      el.after(note);
    }
    put(note, T.chart_top_lines.replace("{k}", shown).replace("{n}", total), `${shown}/${total}`);
  }
  const seriesMean = (s) => mean(s.points.map((p) => p[1]).filter((v) => v !== null && Number.isFinite(v)));
  function spanFormatter(spanMs) {
    return (v) => {
      const p = zoneParts(v);
      return spanMs > 2 * DAY ? `${p.month}-${p.day}` : `${p.hour}:${p.minute}`;
    };
  }
  /** Line chart of API series ({key, name, points:[[t, v]]}) on a time axis shown in the zone. */
  function lineChart(el, series, opts = {}) {
    const shown = series.filter((s) => s.points.length);
    if (!shown.length) return noData(el);
    if (opts.emptyText && shown.every((s) => s.points.every((p) => !p[1]))) return noData(el, opts.emptyText);
    if (el) delete el.dataset.empty;
    const names = opts.names || {};
    const label = (s) => names[s.key] || s.name || s.key;
    // the top lines by the metric's mean over the window are drawn, the rest sit unselected in the legend
    const ranked = [...shown].sort((a, b) => (seriesMean(b) ?? -Infinity) - (seriesMean(a) ?? -Infinity));
    const limit = opts.maxLines ?? MAX_LINES;
    // a refresh keeps what the reader picked in the legend; a line new to the panel follows the ranking
    const before = charts.get(el) && charts.get(el).getOption();
    const picked = (before && before.legend && before.legend[0] && before.legend[0].selected) || {};
    const selected = Object.fromEntries(ranked.map((s, i) => [label(s), picked[label(s)] ?? i < limit]));
    linesNote(el, Object.values(selected).filter(Boolean).length, ranked.length);
    const digits = opts.digits ?? (opts.metric ? F.decimals(opts.metric) : 1);
    return chart(el, {
      grid: { left: 44, right: 12, top: shown.length > 1 ? 56 : 16, bottom: 28 },
      legend: shown.length > 1 ? { type: "scroll", top: 0, textStyle: { fontSize: 11 }, selected } : undefined,
      tooltip: {
        trigger: "axis",
        valueFormatter: (v) => num(v, digits) + (opts.unit ? " " + opts.unit : ""),
        axisPointer: { label: { formatter: (p) => fmtTime(p.value) } },
      },
      xAxis: { type: "time", axisLabel: { formatter: spanFormatter(opts.spanMs || 7 * DAY), hideOverlap: true } },
      // a bar's length is its value: its axis starts at zero; a line's may zoom to where the values are
      yAxis: { type: "value", scale: !opts.bars, min: opts.bars ? 0 : undefined, name: opts.unit || "",
        nameTextStyle: { align: "left" } },
      series: ranked.map((s) => ({
        type: opts.bars ? "bar" : "line", name: label(s), showSymbol: false,
        data: s.points.map(([t, v]) => [Date.parse(t), v]),
      })),
    });
  }

  // ---- refresh loop ----
  function showError(err) {
    const el = document.getElementById("error");
    if (!el) return;
    if (err) {
      el.textContent = `${T.load_failed}: ${err instanceof ApiError ? errorText(err) : err.message}`;
      el.hidden = false;
    } else {
      el.hidden = true;
    }
  }
  function every60(load) {
    let running = false;
    async function tick() {
      if (running) return;
      running = true;
      try {
        await load(Date.now());
        showError(null);
        const stamp = document.getElementById("updated");
        if (stamp) stamp.textContent = fmtTime(Date.now());
        document.body.dataset.loaded = String((+document.body.dataset.loaded || 0) + 1);
      } catch (err) {
        console.error(err);
        showError(err);
        document.body.dataset.failed = "1";
      } finally {
        running = false;
      }
    }
    tick();
    setInterval(tick, REFRESH_MS);
    return tick;
  }

  // ---- the season card (district page: one per township; township page: its own) ----
  const sum = (xs) => xs.reduce((a, b) => a + b, 0);
  const under = (code, prefix) => code.startsWith(prefix);
  const mean = (xs) => (xs.length ? sum(xs) / xs.length : null);

  /** Everything a set of cards needs, in one request per kind for the whole scope. */
  async function cardData(scope, level, now) {
    const year = page.year;
    const today = dayStart(now);
    const q = (metric, extra) => api("/api/v1/readings", Object.assign(
      { region: scope, metric, start: iso(today), end: iso(now), every: "1d", agg: "mean", group_by: level }, extra));
    const [devices, alerts, yNow, yApproved, yBefore, byVillage, soil, temp, rain] = await Promise.all([
      api("/api/v1/devices", { region: scope }),
      api("/api/v1/alerts", { region: scope, active: "true" }),
      api("/api/v1/yields", { region: scope, year, group_by: level }),
      api("/api/v1/yields", { region: scope, year, group_by: level, status: "approved" }),
      api("/api/v1/yields", { region: scope, year: year - 1, group_by: level }),
      api("/api/v1/yields", { region: scope, year, group_by: "village" }),
      q("soil_moisture"),
      q("air_temp"),
      api("/api/v1/readings", { region: scope, metric: "rainfall", start: iso(now - DAY), end: iso(now),
        every: "1h", agg: "sum", group_by: "device" }),
    ]);
    return { devices: devices.devices, alerts: alerts.alerts, yNow, yApproved, yBefore, byVillage, soil, temp, rain };
  }

  const lastValue = (s) => (s && s.points.length ? s.points[s.points.length - 1][1] : null);
  const seriesOf = (answer, key) => answer.series.find((s) => s.key === key);
  const groupOf = (answer, key) => answer.groups.find((g) => g.key === key);

  /** Rainfall of a region over the answer's span: each station's total, averaged over stations. */
  function rainOf(answer, devices, code) {
    const village = Object.fromEntries(devices.map((d) => [d.id, d.village]));
    const totals = answer.series.filter((s) => village[s.key] && under(village[s.key], code))
      .map((s) => sum(s.points.map((p) => p[1])));
    return mean(totals);
  }

  function cardFacts(data, code) {
    const mine = data.devices.filter((d) => under(d.village, code));
    const stations = mine.filter((d) => d.kind === "station");
    const g = groupOf(data.yNow, code) || { records: 0, area: 0, yield: 0, yield_per_area: null };
    const before = groupOf(data.yBefore, code);
    // only villages with farmland count: an urban community has no harvest to report
    const farming = new Set(page.farming || []);
    const reporting = data.byVillage.groups.filter((v) => under(v.key, code) && v.records > 0
      && farming.has(v.key)).length;
    return {
      online: mine.filter((d) => d.online).length,
      total: mine.length,
      offline: stations.filter((d) => !d.online).length,
      soil: lastValue(seriesOf(data.soil, code)),
      temp: lastValue(seriesOf(data.temp, code)),
      rain: rainOf(data.rain, data.devices, code),
      alerts: data.alerts.filter((a) => under(a.region, code)).length,
      now: g,
      before,
      target: page.targets[code] || null,
      reporting,
      approved: (groupOf(data.yApproved, code) || { records: 0 }).records,
      villages: page.villages[code] || 0,
    };
  }

  function fillCard(root, f) {
    put(field(root, "devices"), `${f.online}/${f.total}`, `${f.online}/${f.total}`);
    put(field(root, "soil_moisture"), f.soil === null ? "—" : `${num(f.soil, 1)} %`, f.soil);
    put(field(root, "air_temp"), f.temp === null ? "—" : `${num(f.temp, 1)} °C`, f.temp);
    put(field(root, "rain_24h"), f.rain === null ? "—" : `${num(f.rain, 1)} mm`, f.rain);
    put(field(root, "alerts"), String(f.alerts), f.alerts, f.alerts ? "warn" : "");
    putBig(field(root, "yield"), f.now.yield, "jin");
    const yoy = f.before ? change(f.now.yield, f.before.yield) : null;
    put(field(root, "yield_yoy"), pct(yoy, true), yoy, trend(yoy));
    const progress = f.target ? ratio(f.now.yield, f.target.yield) : null;
    put(field(root, "yield_target"), f.target ? pct(progress) : T.no_target, progress);
    put(field(root, "yield_per_area"), num(f.now.yield_per_area, 0), f.now.yield_per_area);
    const perUnit = root.querySelector('[data-field="yield_per_area"] + .unit');
    if (perUnit) perUnit.textContent = F.unitWord("jin_per_mu");
    const perYoy = f.before && f.now.yield_per_area !== null ? change(f.now.yield_per_area, f.before.yield_per_area) : null;
    put(field(root, "per_mu_yoy"), pct(perYoy, true), perYoy, trend(perYoy));
    const perTarget = f.target && f.target.yield_per_area;
    put(field(root, "per_mu_target"), perTarget ? F.withUnit(num(perTarget, 0), "jin_per_mu") : "—", perTarget);
    const bar = field(root, "progress-bar");
    if (bar) bar.style.width = `${Math.min(100, (progress || 0) * 100)}%`;
    put(field(root, "coverage"), T.coverage.replace("{r}", F.count(f.reporting)).replace("{n}", F.count(f.villages))
      .replace("{o}", F.count(f.offline)), `${f.reporting}/${f.villages}/${f.offline}`);
    // 农情调度: what the township has approved, and what still waits for its review
    const pending = f.now.records - f.approved;
    put(field(root, "review"), T.review_counts.replace("{a}", F.count(f.approved)).replace("{p}", F.count(pending)),
      `${f.approved}/${pending}`, pending ? "warn" : "");
    root.dataset.ready = "1";
  }

  /** A 墒情 chip: today's grade in the page's language, coloured per grade (nongyun.css .grade-*);
      when nothing was graded, why (frozen soil, anomalous readings, no data). */
  function gradeChip(el, g) {
    if (!el) return false;
    const graded = Boolean(g && g.grade);
    const why = g && g.frozen ? T.moisture_frozen : g && g.anomalous ? T.moisture_anomalous : T.moisture_ungraded;
    const text = graded ? (page.lang === "zh" ? g.grade : g.grade_en) : why;
    const kind = graded ? g.grade_en.replace(/ /g, "-") : g && g.frozen ? "frozen" : "none";
    put(el, text, graded ? g.grade : null, `grade-chip grade-${kind}`);
    el.title = graded ? T.moisture_relative.replace("{v}", num(g.relative_pct, 1)) : "";
    return graded;
  }

  function fillTotals(root, total, target) {
    if (!root) return;
    putBig(field(root, "yield"), total.yield, "jin");
    putBig(field(root, "area"), total.area, "mu", 1);
    put(field(root, "yield_per_area"), num(total.yield_per_area, 0), total.yield_per_area);
    const perUnit = root.querySelector('[data-field="yield_per_area"] + .unit');
    if (perUnit) perUnit.textContent = F.unitWord("jin_per_mu");
    put(field(root, "records"), F.count(total.records), total.records);
    const progress = target ? ratio(total.yield, target.yield) : null;
    put(field(root, "yield_target"), target ? pct(progress) : T.no_target, progress);
    root.dataset.ready = "1";
  }

  /** The 24h/7d/30d/90d picker: calls onPick(rangeKey) now and on every click. */
  function rangePicker(onPick) {
    const box = document.getElementById("range");
    let current = box ? box.querySelector("button.on").dataset.range : "24h";
    if (box) {
      box.addEventListener("click", (ev) => {
        const b = ev.target.closest("button[data-range]");
        if (!b) return;
        box.querySelectorAll("button").forEach((x) => x.classList.toggle("on", x === b));
        current = b.dataset.range;
        onPick(current).catch(showError);
      });
    }
    return () => current;
  }

  return {
    page, T, F, DAY, HOUR, api, post, send, errorText, ApiError, iso, dayStart, fmtTime, num, wan, pct, change, ratio,
    put, putBig, field, chart, lineChart, noData, linesNote, MAX_LINES, every60, cardData, cardFacts, fillCard,
    fillTotals, rangePicker, sum, mean, under, lastValue, seriesOf, groupOf, rainOf, showError, gradeChip,
  };
})();
