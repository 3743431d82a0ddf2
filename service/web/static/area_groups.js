/* The area-group card of township and district pages: each area group (示范区, 高标准农田, ...) and
   the land of no group (其他) with 单产, 同比 and harvested area, from /yields?group_by=area_group. */
"use strict";

(() => {
  const { page, T } = NY;
  const card = document.getElementById("area-groups");
  if (!card) return;
  const code = page.region.code;
  const kinds = page.area_group_kinds || {};

  async function load() {
    const q = (year) => NY.api("/api/v1/yields", { region: code, year, group_by: "area_group" });
    const [now, before] = await Promise.all([q(page.year), q(page.year - 1)]);
    const body = card.querySelector("tbody");
    body.replaceChildren();
    const other = now.groups.find((g) => g.key === "") || null;
    for (const g of now.groups) {
      if (g.key !== "" && !g.records) continue; // a project of another township
      const last = NY.groupOf(before, g.key);
      const tr = document.createElement("tr");
      tr.dataset.key = g.key;
      if (kinds[g.key]) tr.dataset.kind = kinds[g.key];
      const name = document.createElement("th");
      name.textContent = g.key === "" ? T.other_land : g.name;
      tr.append(name);
      const cells = ["yield_per_area", "yoy", "area", "records"].map((f) => {
        const td = document.createElement("td");
        td.dataset.field = f;
        tr.append(td);
        return td;
      });
      const yoy = last && g.yield_per_area !== null ? NY.change(g.yield_per_area, last.yield_per_area) : null;
      NY.put(cells[0], NY.num(g.yield_per_area, 0), g.yield_per_area);
      NY.put(cells[1], NY.pct(yoy, true), yoy);
      NY.put(cells[2], NY.num(g.area, 1), g.area);
      NY.put(cells[3], String(g.records), g.records);
      body.append(tr);
    }
    const demo = now.groups.find((g) => kinds[g.key] === "demo_zone" && g.records);
    const gain = demo && other && other.yield_per_area ? NY.change(demo.yield_per_area, other.yield_per_area) : null;
    NY.put(card.querySelector('[data-field="demo-gain"]'),
      gain === null ? "—" : T.demo_gain.replace("{g}", demo.name).replace("{p}", NY.pct(gain, true)), gain);
    card.dataset.ready = "1";
  }

  // its own refresh, not NY.every60: the page's "loaded" counter stays the main view's
  const tick = () => load().catch(NY.showError);
  tick();
  setInterval(tick, 60_000);
})();
