/* Village page: stations with their latest readings, history charts, yield records, harvest entry. */
"use strict";

(() => {
  const { page, T, api, num, put, field } = NY;
  const code = page.region.code;
  const metrics = [...document.querySelectorAll("#station-table thead th[data-metric]")].map((th) => th.dataset.metric);
  const FORM_FIELD = { area_ha: "area_mu", yield_kg: "yield_jin", village: "" };

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
        if (tv) put(cell, num(tv[1], m === "light" ? 0 : 1), tv[1]);
        else if (d.metrics.includes(m)) put(cell, "—", null);
      }
    }
  }

  async function records() {
    const [list, totals] = await Promise.all([
      api(`/r/${code}/yield-records.json`, { year: page.year }),
      api("/api/v1/yields", { region: code, year: page.year }),
    ]);
    NY.fillTotals(document.getElementById("totals"), totals.total, page.targets[code]);
    const body = document.querySelector("#records-table tbody");
    body.replaceChildren(...list.records.map((r) => {
      const tr = document.createElement("tr");
      for (const text of [NY.fmtTime(r.ts, true), page.crops[r.crop] || r.crop, r.plot || "—",
        num(r.area, 2), num(r.yield, 0), num(r.yield_per_area, 0)]) {
        const td = document.createElement("td");
        td.textContent = text;
        tr.append(td);
      }
      return tr;
    }));
  }

  // ---- harvest entry: POST /api/v1/yields, each error next to its field ----
  const form = document.getElementById("harvest-form");
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
  function clearErrors() {
    form.querySelectorAll(".field-error").forEach((p) => { p.hidden = true; p.textContent = ""; });
    form.querySelectorAll("[aria-invalid]").forEach((el) => el.removeAttribute("aria-invalid"));
  }
  function showFieldError(err) {
    let name = err.field || "";
    if (name in FORM_FIELD) name = FORM_FIELD[name];
    let slot = form.querySelector(`[data-error-for="${name}"]`);
    if (!slot) slot = form.querySelector('[data-error-for=""]');
    slot.textContent = err.message;
    slot.hidden = false;
    const input = name && form.elements[name];
    if (input) {
      input.setAttribute("aria-invalid", "true");
      input.focus();
    }
  }
  if (form) form.elements.ts.value = zoneNowLocalInput(); // no form: a viewer cannot enter harvests
  if (form) form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearErrors();
    const ok = document.getElementById("harvest-ok");
    ok.hidden = true;
    const f = form.elements;
    const body = { village: f.village.value, ts: toRfc3339(f.ts.value), crop: f.crop.value };
    for (const k of ["area_mu", "yield_jin"]) {
      if (f[k].value !== "") body[k] = Number(f[k].value);
    }
    if (f.plot.value.trim()) body.plot = f.plot.value.trim();
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      const stored = await NY.post("/api/v1/yields", body);
      ok.textContent = `${T.saved}: ${page.crops[stored.crop] || stored.crop} ${num(stored.area_mu, 2)} ${T.unit_mu}, `
        + `${num(stored.yield_jin, 0)} ${T.unit_jin}`;
      ok.hidden = false;
      f.area_mu.value = "";
      f.yield_jin.value = "";
      f.plot.value = "";
      await records();
    } catch (err) {
      if (err instanceof NY.ApiError) showFieldError(err);
      else showFieldError({ field: "", message: `${T.load_failed}: ${err.message}` });
    } finally {
      button.disabled = false;
    }
  });

  const currentRange = NY.rangePicker((key) => History.draw(code, key));
  NY.every60(async (now) => {
    await Promise.all([stations(now), records(), History.draw(code, currentRange())]);
  });
})();
