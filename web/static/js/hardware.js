// Model page: the hardware panel (devices the job holds, live telemetry from the job's stream).
import { el } from "./util.js";
import { sampleBlock } from "./devices.js";

const panel = document.getElementById("hardware");
const list = document.getElementById("hardware-devices");
const jobId = panel?.dataset.jobId;
const cards = new Map();  // "node/device" → sample container

function render(devices) {
  const keys = new Set(devices.map((d) => `${d.node_id}/${d.device_id}`));
  for (const [key, node] of cards) {
    if (!keys.has(key)) {
      node.closest("li")?.remove();
      cards.delete(key);
    }
  }
  for (const d of devices) {
    const key = `${d.node_id}/${d.device_id}`;
    if (!cards.has(key)) {
      const body = el("div", { class: "hw-sample" });
      list.append(el("li", { class: "hw-device" },
        el("h3", {}, d.name || d.device_id, " ",
          el("span", { class: "muted" }, `${d.device_id} on ${d.node_id}`)),
        body));
      cards.set(key, body);
    }
    if (d.sample) cards.get(key).replaceChildren(sampleBlock(d.sample));
    else if (!cards.get(key).childElementCount) cards.get(key).replaceChildren(sampleBlock(null));
  }
  panel.hidden = devices.length === 0;
}

async function refresh() {
  try {
    const response = await fetch(`/api/v1/jobs/${encodeURIComponent(jobId)}/hardware`);
    if (response.ok) render((await response.json()).devices || []);
  } catch {
    /* offline for a moment: the next poll tries again */
  }
}

if (panel && jobId) {
  // Which devices the job holds changes rarely (lease granted, released, expired): poll that;
  // their numbers arrive about once a second as `gpu` events on the job's stream (model.js).
  addEventListener("digits:gpu", (event) => {
    for (const s of event.detail.devices || []) {
      const body = cards.get(`${s.node_id}/${s.device_id}`);
      if (body) body.replaceChildren(sampleBlock(s));
    }
  });
  refresh();
  setInterval(refresh, 5000);
}
