/* Village page: today's 墒情 and totals, harvest entry, the season's records a page at a time, stations with
 * their latest readings, history charts one metric at a time on a phone. */
"use strict";

(() => {
  const { page, T, api, num, put, field } = NY;
  const code = page.region.code;
  const metrics = [...document.querySelectorAll("#station-table thead th[data-metric]")].map((th) => th.dataset.metric);
  const fill = (text, values) => text.replace(/\{(\w+)\}/g, (m, k) => (k in values ? values[k] : m));

  async function moistureToday() {
    const ans = await api("/api/v1/moisture", { region: code });
    const g = ans.groups.find((x) => x.key === code) || ans.total;
    const graded = NY.gradeChip(document.getElementById("moisture-chip"), g);
    const rel = document.getElementById("moisture-relative");
    put(rel, graded ? T.moisture_relative.replace("{v}", num(g.relative_pct, 1)) : "", g.relative_pct);
  }

  async function stations(now) {
    const [devices, values] = await Promise.all([api("/api/v1/devices", { region: code }),
      History.latest(code, metrics, now)]);
    const byId = Object.fromEntries(devices.devices.map((d) => [d.id, d]));
    for (const row of document.querySelectorAll("#station-table tbody tr")) {
      const d = byId[row.dataset.device];
      if (!d) continue;
      put(field(row, "status"), d.online ? T.online : T.offline, d.online ? "online" : "offline",
        d.online ? "online" : "offline");
      put(field(row, "last_seen"), NY.fmtTime(d.last_seen), d.last_seen);
      for (const m of metrics) {
        const cell = row.querySelector(`td[data-metric="${m}"]`);
        const tv = values[m][d.id];
        if (tv) put(cell, NY.F.metricNum(m, tv[1]), tv[1]);  // the catalogue's decimals (battery 3.85)
        else if (d.metrics.includes(m)) put(cell, "—", null);
      }
    }
  }

  // ---- the season's records, newest first, a page at a time (a short page on a phone, where the table
  // sits above the stations and charts); editors correct or void a record (PATCH / void with a reason)
  // in a dialog that also shows its history ----
  const PAGE_ROWS = window.matchMedia("(max-width: 640px)").matches ? 20 : 50;
  const table = document.getElementById("records-table");
  const editable = table.dataset.editable === "1";
  const pager = document.getElementById("records-pager");
  const prevButton = document.getElementById("records-prev");
  const nextButton = document.getElementById("records-next");
  let all = [];
  let pageIndex = 0;

  function row(r) {
    const tr = document.createElement("tr");
    tr.dataset.id = r.id;
    tr.dataset.status = r.status;
    const cells = [NY.fmtTime(r.ts, true), page.crops[r.crop] || r.crop, r.plot || "—", num(r.area, 2),
      num(r.yield, 0), num(r.yield_per_area, 0), T[`status_${r.status}`] || r.status];
    for (const text of cells) {
      const td = document.createElement("td");
      td.textContent = text;
      tr.append(td);
    }
    const actions = document.createElement("td");
    const open = document.createElement("button");
    open.type = "button";
    open.textContent = editable && r.status !== "void" ? T.rec_correct : T.rec_history;
    open.addEventListener("click", () => openRecord(r));
    actions.append(open);
    tr.append(actions);
    return tr;
  }

  function drawRows() {
    const pages = Math.max(1, Math.ceil(all.length / PAGE_ROWS));
    pageIndex = Math.min(pageIndex, pages - 1); // a void or a new record may shorten or lengthen the list
    const body = table.querySelector("tbody");
    body.replaceChildren(...all.slice(pageIndex * PAGE_ROWS, (pageIndex + 1) * PAGE_ROWS).map(row));
    pager.hidden = pages <= 1;
    pager.dataset.page = String(pageIndex + 1);
    prevButton.disabled = pageIndex === 0;
    nextButton.disabled = pageIndex >= pages - 1;
    document.getElementById("records-page").textContent = fill(T.rec_page,
      { p: pageIndex + 1, n: pages, c: num(all.length, 0) });
  }
  prevButton.addEventListener("click", () => { pageIndex -= 1; drawRows(); });
  nextButton.addEventListener("click", () => { pageIndex += 1; drawRows(); });

  async function records() {
    const [list, totals] = await Promise.all([
      api(`/r/${code}/yield-records.json`, { year: page.year }),
      api("/api/v1/yields", { region: code, year: page.year }),
    ]);
    NY.fillTotals(document.getElementById("totals"), totals.total, page.targets[code]);
    all = list.records;
    table.dataset.count = String(all.length);
    drawRows();
  }

  const dialog = document.getElementById("record-dialog");
  const rform = document.getElementById("record-form");
  let current = null;

  function recordError(err) {
    let name = err.field || "";
    if (name === "area_ha") name = "area_mu";
    if (name === "yield_kg") name = "yield_jin";
    const slot = rform.querySelector(`[data-error-for="${name}"]`) || rform.querySelector('[data-error-for=""]');
    slot.textContent = err instanceof NY.ApiError ? NY.errorText(err) : (err.message || String(err));
    slot.hidden = false;
  }

  // a revision's changes are stored fields in SI (area_ha, yield_kg): shown as the page shows records
  const CHANGE = {
    area_ha: [T.area_mu, (v) => num(v * 15, 2)],
    yield_kg: [T.yield_jin, (v) => num(v * 2, 0)],
    ts: [T.date_time, (v) => NY.fmtTime(v, true)],
    crop: [T.crop, (v) => page.crops[v] || v],
    plot: [T.plot, (v) => v],
    village: [T.village, (v) => page.names[v] || v],
    moisture_pct: ["%", (v) => num(v, 1)],
    status: [T.status, (v) => T[`status_${v}`] || v],
  };

  async function drawHistory(r) {
    const list = rform.querySelector('[data-field="history"]');
    list.replaceChildren();
    const answer = await api(`/api/v1/yields/records/${encodeURIComponent(r.id)}/history`);
    for (const rev of answer.revisions) {
      const li = document.createElement("li");
      li.dataset.revision = String(rev.revision);
      const head = document.createElement("b");
      head.textContent = T.rec_rev.replace("{r}", rev.revision).replace("{at}", NY.fmtTime(rev.at, true))
        .replace("{by}", rev.by || T.rec_device);
      li.append(head, ` ${T[`status_${rev.status}`] || rev.status}`);
      if (rev.reason) li.append(`：${rev.reason}`);
      const changes = Object.entries(rev.changes || {}).filter(([k]) => rev.revision > 1 || k === "status");
      if (changes.length) {
        const ul = document.createElement("ul");
        for (const [k, [before, after]] of changes) {
          const item = document.createElement("li");
          item.dataset.change = k;
          const [label, show] = CHANGE[k] || [k, (v) => String(v)];
          const text = (v) => (v === null || v === undefined || v === "" ? "—" : show(v));
          item.textContent = `${label}：${text(before)} → ${text(after)}`;
          ul.append(item);
        }
        li.append(ul);
      }
      list.append(li);
    }
  }

  function openRecord(r) {
    current = r;
    rform.querySelectorAll(".field-error").forEach((p) => { p.hidden = true; });
    const done = rform.querySelector('[data-field="done"]');
    if (done) done.hidden = true;
    rform.querySelector('[data-field="title"]').textContent = T.rec_edit_title.replace("{id}", r.id);
    const edit = rform.querySelector('[data-part="edit"]');
    if (edit) {
      edit.hidden = r.status === "void";
      const f = rform.elements;
      f.crop.value = r.crop;
      f.area_mu.value = r.area;
      f.yield_jin.value = r.yield;
      f.plot.value = r.plot || "";
      f.reason.value = "";
    }
    dialog.showModal();
    drawHistory(r).catch(recordError);
  }

  async function change(action) {
    rform.querySelectorAll(".field-error").forEach((p) => { p.hidden = true; });
    const f = rform.elements;
    const reason = f.reason.value.trim();
    if (!reason) {
      recordError({ field: "reason", message: T.rec_reason_needed });
      return;
    }
    const id = encodeURIComponent(current.id);
    let answer;
    try {
      if (action === "void") {
        answer = await NY.post(`/api/v1/yields/records/${id}/void`, { reason });
      } else {
        const body = { reason };
        if (f.crop.value !== current.crop) body.crop = f.crop.value;
        if (Number(f.area_mu.value) !== current.area) body.area_mu = Number(f.area_mu.value);
        if (Number(f.yield_jin.value) !== current.yield) body.yield_jin = Number(f.yield_jin.value);
        if (f.plot.value.trim() !== (current.plot || "")) body.plot = f.plot.value.trim(); // "" removes it
        if (Object.keys(body).length === 1) {
          recordError({ field: "", message: T.rec_nothing });
          return;
        }
        answer = await NY.send("PATCH", `/api/v1/yields/records/${id}`, body);
      }
    } catch (err) {
      recordError(err);
      return;
    }
    const done = rform.querySelector('[data-field="done"]');
    done.textContent = action === "void" ? T.rec_voided : T.rec_saved.replace("{r}", answer.revision);
    done.hidden = false;
    current = Object.assign({}, current, { status: answer.status, revision: answer.revision });
    rform.querySelector('[data-part="edit"]').hidden = answer.status === "void";
    await Promise.all([records(), drawHistory(current)]);
  }
  if (editable) {
    rform.querySelector('[data-action="save"]').addEventListener("click", () => change("save"));
    rform.querySelector('[data-action="void"]').addEventListener("click", () => change("void"));
  }

  // ---- harvest entry: POST /api/v1/yields, each error next to its field, in the page's language ----
  // The form has only 亩 and 斤 fields: an error about the SI key of the same quantity is shown on its field.
  const form = document.getElementById("harvest-form");
  const FORM_FIELD = { area_ha: "area_mu", yield_kg: "yield_jin" };
  const FIELD_TEXT = { area_mu: "form_area", yield_jin: "form_yield", ts: "form_ts", crop: "form_crop",
    plot: "form_plot", village: "form_village" };
  // the codes of one field's value (the decoder's reasons pass through as the API's code): the field's own text
  const FIELD_CODES = new Set(["bad_request", "bad_record", "not_finite", "out_of_range", "bad_timestamp",
    "time_in_future", "time_too_old", "unknown_crop"]);
  const SLACK = 1e-9; // as service/payloads.py: bounds inclusive despite float rounding
  const perMuText = (v) => num(v, Number.isInteger(Math.round(v * 10) / 10) ? 0 : 1);
  const pad = (n) => String(n).padStart(2, "0");
  function zoneNowLocalInput() {
    const p = new Intl.DateTimeFormat("en-US", { timeZone: page.tz, hourCycle: "h23", year: "numeric",
      month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit" }).formatToParts(new Date());
    const o = Object.fromEntries(p.map((x) => [x.type, x.value]));
    return `${o.year}-${o.month}-${o.day}T${o.hour}:${o.minute}`;
  }
  /** The wall-clock time typed into the form, read in the configured zone, as RFC 3339 with offset. */
  function toRfc3339(local) {
    if (!local) return undefined;
    const [d, t] = local.split("T");
    const [y, mo, da] = d.split("-").map(Number);
    const [h, mi] = t.split(":").map(Number);
    const wall = Date.UTC(y, mo - 1, da, h, mi);
    let off = 0;
    for (let i = 0; i < 2; i++) { // offset at the instant, refined once for zone changes
      const p = new Intl.DateTimeFormat("en-US", { timeZone: page.tz, hourCycle: "h23", year: "numeric",
        month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit" }).formatToParts(new Date(wall - off));
      const o = Object.fromEntries(p.map((x) => [x.type, x.value]));
      off = Date.UTC(+o.year, +o.month - 1, +o.day, +o.hour, +o.minute) - (wall - off);
    }
    const sign = off >= 0 ? "+" : "-";
    const a = Math.abs(off) / 60000;
    return `${d}T${pad(h)}:${pad(mi)}:00${sign}${pad(Math.floor(a / 60))}:${pad(a % 60)}`;
  }

  /** What the form holds: the crop with its plausible 单产 (from the catalogue, with the page), the area
      typed or else the registered plot's, the yield, and their 单产 when both are there. */
  function entry() {
    const f = form.elements;
    const option = f.crop.selectedOptions[0];
    const plot = f.plot.value.trim();
    const plotOption = plot ? [...document.querySelectorAll("#plot-list option")].find((o) => o.value === plot) : null;
    const typed = f.area_mu.value !== "" ? Number(f.area_mu.value) : null;
    const area = typed !== null ? typed : (plotOption ? Number(plotOption.dataset.area) : null);
    const jin = f.yield_jin.value !== "" ? Number(f.yield_jin.value) : null;
    const e = { crop: option ? option.textContent : f.crop.value, lo: option ? Number(option.dataset.min) : 0,
      hi: option ? Number(option.dataset.max) : Infinity, plot, registered: Boolean(plotOption), typed, area, jin };
    e.per = area > 0 && jin !== null && Number.isFinite(jin) ? jin / area : null;
    e.plausible = e.per === null || (e.per >= e.lo * (1 - SLACK) && e.per <= e.hi * (1 + SLACK));
    return e;
  }
  const implausibleText = (e) => fill(T.form_implausible,
    { v: perMuText(e.per), crop: e.crop, lo: num(e.lo, 0), hi: num(e.hi, 0) });

  /** An API error → [the form field it names ("" for the form as a whole), its text in the page's language].
      Rendered from the error's code and field; the server's (English) message only for a code unknown here. */
  function errorOf(err, e) {
    const name = FORM_FIELD[err.field] || err.field || "";
    switch (err.code) {
      case "implausible_yield": // the page's range with the values, unless the page thought them plausible
        return ["yield_jin", e.per !== null && !e.plausible ? implausibleText(e) : T.err_implausible_yield];
      case "duplicate": return ["", fill(T.err_duplicate, { id: err.id || "" })];
      case "forbidden": return ["", T.err_forbidden];
      case "unauthorized": return ["", T.err_unauthorized];
      case "unknown_plot": return ["plot", fill(T.form_unknown_plot, { plot: e.plot })];
      case "plot_mismatch": return ["plot", fill(T.form_plot_mismatch, { plot: e.plot })];
      default:
        if (FIELD_CODES.has(err.code)) {
          const own = T[`err_${err.code}`];
          if (name === "ts" && err.code.startsWith("time_")) return ["ts", own];
          if (FIELD_TEXT[name]) return [name, T[FIELD_TEXT[name]]];
          return ["", T.form_bad_request];
        }
        return [name, NY.errorText(err) || `HTTP ${err.status}`];
    }
  }

  function clearErrors() {
    form.querySelectorAll(".field-error").forEach((p) => { p.hidden = true; p.textContent = ""; });
    form.querySelectorAll("[aria-invalid]").forEach((el) => el.removeAttribute("aria-invalid"));
  }
  function showFieldError(name, text, focus = true) {
    const slot = form.querySelector(`[data-error-for="${name}"]`) || form.querySelector('[data-error-for=""]');
    slot.textContent = text;
    slot.hidden = false;
    if (slot.dataset.errorFor === "yield_jin") document.getElementById("harvest-per-mu").hidden = true; // said there
    const input = slot.dataset.errorFor && form.elements[slot.dataset.errorFor];
    if (input) {
      input.setAttribute("aria-invalid", "true");
      if (focus) input.focus();
    }
  }
  /** The checks the page can make itself, in the page's language, before anything is sent. */
  function localErrors(e) {
    const f = form.elements;
    const out = [];
    if (!f.ts.value) out.push(["ts", T.form_ts]);
    if (e.typed === null ? !e.registered : !(e.typed > 0)) out.push(["area_mu", T.form_area]);
    if (e.jin === null || !(e.jin >= 0)) out.push(["yield_jin", T.form_yield]);
    else if (!e.plausible) out.push(["yield_jin", implausibleText(e)]);
    return out;
  }
  /** The 单产 as it is typed, with the crop's plausible range; a warning before the clerk sends it. */
  function showPerMu() {
    const hint = document.getElementById("harvest-per-mu");
    const e = entry();
    hint.hidden = e.per === null;
    if (e.per === null) return;
    hint.textContent = e.plausible ? fill(T.form_per_mu, { v: perMuText(e.per), crop: e.crop, lo: num(e.lo, 0),
      hi: num(e.hi, 0) }) : implausibleText(e);
    hint.classList.toggle("warn", !e.plausible);
    hint.dataset.plausible = String(e.plausible);
  }
  /** After a save: a new ticket starts empty, at the current time (the crop stays: tickets come in runs). */
  function clearForm() {
    const f = form.elements;
    f.ts.value = zoneNowLocalInput();
    f.area_mu.value = "";
    f.yield_jin.value = "";
    f.plot.value = "";
    showPerMu();
  }

  if (form) { // no form: a viewer cannot enter harvests
    form.elements.ts.value = zoneNowLocalInput();
    for (const name of ["crop", "area_mu", "yield_jin", "plot"]) {
      form.elements[name].addEventListener("input", showPerMu);
    }
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      clearErrors();
      const ok = document.getElementById("harvest-ok");
      ok.hidden = true;
      const f = form.elements;
      const e = entry();
      const local = localErrors(e);
      if (local.length) {
        local.forEach(([name, text], i) => showFieldError(name, text, i === 0));
        return;
      }
      const body = { village: f.village.value, ts: toRfc3339(f.ts.value), crop: f.crop.value, yield_jin: e.jin };
      if (e.typed !== null) body.area_mu = e.typed;
      if (e.plot) body.plot = e.plot;
      const button = form.querySelector("button[type=submit]");
      button.disabled = true;
      try {
        const stored = await NY.post("/api/v1/yields", body);
        const mu = stored.area_mu ?? (stored.area_ha ?? 0) * 15; // no area typed: the plot's, answered in ha
        const per = mu > 0 ? stored.yield_jin / mu : null;
        ok.textContent = fill(T.form_saved, { crop: page.crops[stored.crop] || stored.crop,
          area: num(mu, 2), yield: num(stored.yield_jin, 0), per: num(per, 0) })
          + (stored.id ? ` · ${fill(T.form_record, { id: stored.id })}` : "");
        ok.dataset.id = stored.id || "";
        ok.dataset.perMu = per === null ? "" : String(per);
        ok.hidden = false;
        clearForm();
        pageIndex = 0;
        await records();
      } catch (err) {
        showFieldError(...(err instanceof NY.ApiError ? errorOf(err, e) : ["", `${T.load_failed}: ${err.message}`]));
      } finally {
        button.disabled = false;
      }
    });
  }

  // ---- the history charts on a phone: one swipeable row, one metric at a time; the picker's links
  // scroll the row (not the page) and follow a swipe ----
  const strip = document.getElementById("metric-charts");
  const pick = document.getElementById("metric-pick");
  function markPicked(metric) {
    for (const a of pick.querySelectorAll("a[data-metric]")) {
      a.classList.toggle("on", a.dataset.metric === metric);
      if (a.dataset.metric === metric) a.setAttribute("aria-current", "true");
      else a.removeAttribute("aria-current");
    }
    strip.dataset.shown = metric;
  }
  if (strip && pick) {
    pick.addEventListener("click", (ev) => {
      const a = ev.target.closest("a[data-metric]");
      if (!a) return;
      ev.preventDefault();
      const fig = document.getElementById(`fig-${a.dataset.metric}`);
      strip.scrollTo({ left: fig.offsetLeft, behavior: "instant" }); // the strip is the figures' offsetParent
      markPicked(a.dataset.metric);
    });
    strip.addEventListener("scroll", () => {
      const figs = [...strip.querySelectorAll("figure[data-metric]")];
      const i = Math.round(strip.scrollLeft / Math.max(1, strip.clientWidth));
      if (figs[i]) markPicked(figs[i].dataset.metric);
    }, { passive: true });
  }

  const currentRange = NY.rangePicker((key) => History.draw(code, key));
  NY.every60(async (now) => {
    await Promise.all([stations(now), records(), History.draw(code, currentRange()), moistureToday()]);
  });
})();
