/* Device page: status, last seen, battery, latest values and history of one device. */
"use strict";

(() => {
  const { page, T, F, api, put, field } = NY;
  const dev = page.device;
  const facts = document.getElementById("device-facts");

  async function state(now) {
    const [d, values] = await Promise.all([api(`/api/v1/devices/${encodeURIComponent(dev.id)}`),
      dev.metrics.length ? History.latest(dev.village, dev.metrics, now) : {}]);
    const info = d.devices ? d.devices[0] : d;
    put(field(facts, "status"), info.online ? T.online : T.offline, info.online ? "online" : "offline",
      info.online ? "online" : "offline");
    put(field(facts, "last_seen"), NY.fmtTime(info.last_seen, true), info.last_seen);
    const battery = values.battery && values.battery[dev.id];
    put(field(facts, "battery"), battery ? F.metricText("battery", battery[1]) : "—", battery ? battery[1] : null,
      battery && battery[1] < 3.4 ? "warn" : "");
    for (const row of document.querySelectorAll("#latest-table tbody tr")) {
      const tv = values[row.dataset.metric] && values[row.dataset.metric][dev.id];
      put(field(row, "value"), tv ? F.metricText(row.dataset.metric, tv[1]) : "—", tv ? tv[1] : null);
      put(field(row, "ts"), tv ? NY.fmtTime(tv[0]) : "—");
    }
  }

  const currentRange = NY.rangePicker((key) => History.draw(dev.village, key, dev.id));
  NY.every60(async (now) => {
    await Promise.all([state(now), dev.metrics.length ? History.draw(dev.village, currentRange(), dev.id) : null]);
  });
})();
