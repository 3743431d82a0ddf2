/* The ledger import page: the file is checked first (dry run: nothing written, every bad row named
   with its row, column and error), and only a clean check — or "only the valid rows" — enables the
   import, which sends the same file again with dry_run=false. */
"use strict";

(() => {
  const { page, T } = NY;
  const R = page.rt;
  const form = document.getElementById("import-form");
  const commit = document.getElementById("import-commit");
  const result = document.getElementById("import-result");
  const report = document.getElementById("import-report");
  const slot = form.querySelector('[data-error-for="file"]');

  function payload() {
    const file = form.elements.file.files[0];
    if (!file) return null;
    const data = new FormData();
    data.append("file", file, file.name);
    return data;
  }

  function url(dryRun) {
    const q = new URLSearchParams({ dry_run: String(dryRun) });
    if (form.elements.partial.checked) q.set("partial", "true");
    return `/api/v1/yields/import?${q}`;
  }

  function show(answer) {
    report.hidden = false;
    for (const k of ["rows", "accepted", "rejected"]) {
      report.querySelector(`[data-field="${k}"]`).textContent = String(answer[k]);
    }
    report.querySelector("#import-errors").hidden = answer.errors.length === 0;
    const body = report.querySelector("tbody");
    body.replaceChildren(...answer.errors.map((e) => {
      const tr = document.createElement("tr");
      tr.dataset.row = String(e.row);
      const words = page.lang === "en" ? e.message_en : e.message; // the row's own words, with its detail
      for (const text of [e.row === null ? "—" : String(e.row), e.field || "—", e.code, words]) {
        const td = document.createElement("td");
        td.textContent = text;
        tr.append(td);
      }
      return tr;
    }));
  }

  async function run(dryRun) {
    slot.hidden = true;
    result.hidden = true;
    const data = payload();
    if (!data) {
      slot.textContent = R.pick_file;
      slot.hidden = false;
      return;
    }
    const buttons = form.querySelectorAll("button");
    buttons.forEach((b) => { b.disabled = true; });
    try {
      const answer = await NY.send("POST", url(dryRun), data);
      show(answer);
      const partial = form.elements.partial.checked;
      if (dryRun) {
        result.textContent = answer.rejected ? R.checked_bad.replace("{n}", answer.rejected)
          : R.checked_ok.replace("{n}", answer.accepted);
        commit.disabled = answer.accepted === 0 || (answer.rejected > 0 && !partial);
      } else {
        result.textContent = R.imported.replace("{n}", answer.accepted);
        commit.disabled = true;
      }
      result.hidden = false;
      form.dataset.state = dryRun ? "checked" : "imported";
    } catch (err) {
      slot.textContent = err instanceof NY.ApiError ? NY.errorText(err) : `${T.load_failed}: ${err.message}`;
      slot.hidden = false;
      commit.disabled = true;
    } finally {
      form.querySelector("button[type=submit]").disabled = false;
    }
  }

  form.addEventListener("submit", (ev) => { ev.preventDefault(); run(true); });
  form.elements.file.addEventListener("change", () => { commit.disabled = true; report.hidden = true; });
  form.elements.partial.addEventListener("change", () => { commit.disabled = true; });
  commit.addEventListener("click", () => run(false));
  document.body.dataset.loaded = "1";
})();
