/* The township review queue (待审核): submitted records of the scope, oldest pages on "more", each
   approved or returned with a comment through POST /api/v1/yields/records/{id}/review. No timed
   refresh: it would wipe a comment being typed; the list reloads after each decision instead. */
"use strict";

(() => {
  const { page, T, api, num } = NY;
  const R = page.rt;
  const code = page.region.code;
  const body = document.querySelector("#review-table tbody");
  const more = document.getElementById("review-more");
  const count = document.querySelector('#review [data-field="pending"]');
  let next = null;
  let shown = 0;

  function cell(tr, text) {
    const td = document.createElement("td");
    td.textContent = text;
    tr.append(td);
    return td;
  }

  function row(r) {
    const tr = document.createElement("tr");
    tr.dataset.id = r.id;
    const th = document.createElement("th");
    th.textContent = page.names[r.village] || r.village;
    tr.append(th);
    for (const text of [r.plot || "—", NY.fmtTime(r.ts, true), page.crops[r.crop] || r.crop, num(r.area, 2),
      num(r.yield, 0), num(r.yield_per_area, 0), r.entered_by || T.rec_device]) cell(tr, text);
    const comment = document.createElement("input");
    comment.name = "comment";
    comment.maxLength = 500;
    comment.setAttribute("aria-label", R.comment);
    cell(tr, "").append(comment);
    const actions = cell(tr, "");
    const note = document.createElement("span");
    note.className = "field-error";
    for (const decision of ["approve", "return"]) {
      const b = document.createElement("button");
      b.type = "button";
      b.dataset.decision = decision;
      b.textContent = R[decision];
      if (decision === "approve" && r.entered_by && r.entered_by === page.me) {
        b.disabled = true;
        b.title = R.own_record;
      }
      b.addEventListener("click", () => decide(tr, decision, comment, note));
      actions.append(b);
    }
    actions.append(note);
    return tr;
  }

  async function decide(tr, decision, comment, note) {
    note.textContent = "";
    if (decision === "return" && !comment.value.trim()) {
      note.textContent = R.comment_needed;
      comment.focus();
      return;
    }
    tr.querySelectorAll("button").forEach((b) => { b.disabled = true; });
    try {
      await NY.post(`/api/v1/yields/records/${encodeURIComponent(tr.dataset.id)}/review`,
        { decision, comment: comment.value.trim() });
      tr.remove();
      shown -= 1;
      count.textContent = String(Math.max(shown, 0));
      document.getElementById("review-empty").hidden = shown > 0;
      NY.showError(null);
    } catch (err) {
      note.textContent = err instanceof NY.ApiError ? NY.errorText(err) : `${T.load_failed}: ${err.message}`;
      tr.querySelectorAll("button").forEach((b) => { b.disabled = b.title === R.own_record; });
    }
  }

  async function load(cursor) {
    const answer = await api("/api/v1/yields/records",
      { region: code, status: "submitted", limit: 100, cursor: cursor || undefined });
    if (!cursor) body.replaceChildren();
    for (const r of answer.records) body.append(row(r));
    shown += answer.records.length;
    next = answer.next;
    more.hidden = !next;
    count.textContent = next ? `${shown}+` : String(shown);
    document.getElementById("review-empty").hidden = shown > 0;
    document.body.dataset.loaded = String((+document.body.dataset.loaded || 0) + 1);
  }

  more.addEventListener("click", () => load(next).catch(NY.showError));
  load(null).catch(NY.showError);
})();
