/* The alerts panel (district, township and village pages): the page region's active alerts from
 * GET /api/v1/alerts, with kind, place, since, value and state; editors acknowledge one with
 * POST /api/v1/alerts/{id}/ack (NY.post sends the CSRF header). Its own 60-second loop: it never
 * touches the page's "loaded" counter, which the tier scripts own. */
"use strict";

(() => {
  const root = document.getElementById("alerts");
  if (!root) return;
  const { page, T } = NY;
  const region = root.dataset.region;
  const canAck = root.dataset.canAck === "1";
  const body = root.querySelector("#alerts-table tbody");
  // a phone shows each row as a card without the header row: each cell carries its column's name
  const labels = [...root.querySelectorAll("#alerts-table thead th")].map((th) => th.textContent);
  const REFRESH_MS = 60e3;
  // the metric whose unit and decimals a kind's value has (device_offline has none)
  const METRIC = { drought: "soil_moisture", frost: "air_temp", heat: "air_temp", waterlogging: "rainfall",
    battery_low: "battery" };
  const DIGITS = { battery: 2, rainfall: 0 };

  const kindText = (kind) => T[`alert_kind_${kind}`] || kind;

  function place(a) {
    const village = page.names[a.region];
    const town = a.region.length > 9 ? page.names[a.region.slice(0, 9)] : null;
    const where = [town && a.region.slice(0, 9) !== region ? town : null, village || a.region].filter(Boolean);
    if (a.device) where.push(a.device);
    return where.join(" · ");
  }

  function value(a) {
    if (a.value === null || a.value === undefined) return "—";
    const metric = METRIC[a.kind];
    const unit = metric && page.metrics[metric] ? page.metrics[metric].unit : "";
    const digits = DIGITS[metric] ?? 1;
    const shown = `${NY.num(a.value, digits)}${unit ? " " + unit : ""}`;
    if (a.threshold === null || a.threshold === undefined) return shown;
    return shown + T.alert_threshold.replace("{v}", NY.num(a.threshold, digits));
  }

  function state(a) {
    if (!a.active) return T.alert_cleared;
    if (a.acked_at) return T.alert_acked.replace("{by}", a.acked_by || "").replace("{at}", NY.fmtTime(a.acked_at));
    return T.alert_open;
  }

  function showError(text) {
    const el = root.querySelector('[data-field="alert-error"]');
    el.textContent = text || "";
    el.hidden = !text;
  }

  /** An acknowledgement refused: the page's own words for the API's stable code, never its message. */
  function ackError(err) {
    const code = err && err.code;
    if (code === "forbidden") return T.alert_ack_forbidden;
    if (code === "not_found") return T.alert_ack_gone;
    if (code === "unauthorized") return T.err_unauthorized;
    return T.alert_ack_failed;
  }

  function row(a) {
    const tr = document.createElement("tr");
    tr.dataset.alert = a.id;
    tr.dataset.state = !a.active ? "cleared" : a.acked_at ? "acked" : "open";
    tr.className = `sev-${a.severity}`;
    tr.innerHTML = "<th></th><td></td><td></td><td></td><td data-field=\"state\"></td><td></td>";
    const cells = tr.children;
    [...cells].forEach((cell, i) => { if (labels[i]) cell.dataset.label = labels[i]; });
    cells[0].textContent = kindText(a.kind);
    cells[0].title = a.message;  // the rule's own sentence, on hover
    cells[1].textContent = place(a);
    cells[2].textContent = NY.fmtTime(a.since, true);
    cells[2].dataset.value = a.since || "";
    cells[3].textContent = value(a);
    if (a.value !== null && a.value !== undefined) cells[3].dataset.value = String(a.value);
    cells[4].textContent = state(a);
    if (canAck && a.active && !a.acked_at) {
      const b = document.createElement("button");
      b.type = "button";
      b.className = "ack";
      b.dataset.ack = a.id;
      b.textContent = T.alert_ack;
      cells[5].append(b);
    }
    return tr;
  }

  async function load() {
    try {
      const answer = await NY.api("/api/v1/alerts", { region, active: "true" });
      const alerts = answer.alerts;
      body.replaceChildren(...alerts.map(row));
      if (!alerts.length) {
        const tr = document.createElement("tr");
        tr.innerHTML = "<td colspan=\"6\" class=\"muted\"></td>";
        tr.firstChild.textContent = T.alert_none;
        body.append(tr);
      }
      NY.put(root.querySelector('[data-field="alert-count"]'), alerts.length ? String(alerts.length) : "",
        alerts.length, alerts.length ? "count warn" : "count");
      showError("");
      root.dataset.ready = String((+root.dataset.ready || 0) + 1);
    } catch (err) {
      console.error(err);
      showError(T.load_failed);
    }
  }

  body.addEventListener("click", async (ev) => {
    const b = ev.target.closest("button[data-ack]");
    if (!b || b.disabled) return;
    b.disabled = true;
    b.textContent = T.alert_acking;
    try {
      const acked = await NY.post(`/api/v1/alerts/${encodeURIComponent(b.dataset.ack)}/ack`, {});
      b.closest("tr").replaceWith(row(acked));
      showError("");
    } catch (err) {
      console.error(err);
      showError(ackError(err));
      b.disabled = false;
      b.textContent = T.alert_ack;
    }
  });

  load();
  setInterval(load, REFRESH_MS);
})();
