// Model page: the hardware panel. The devices the job holds now (live numbers from the job's
// stream) and, per device, the recorded utilization/memory and host CPU/RAM over the run: drawn
// live while it trains and kept after it ends (GET /api/v1/jobs/<id>/hardware/history).
import { el } from "./util.js";
import { sampleBlock } from "./devices.js";
import { DeviceChart } from "./device-charts.js";

const panel = document.getElementById("hardware");
const list = document.getElementById("hardware-devices");
const history = document.getElementById("hardware-history");
const none = document.getElementById("hardware-none");
const jobId = panel?.dataset.jobId;
const cards = new Map();  // "node/device" → live sample container
const charts = new Map();  // "node/device" → DeviceChart
const known = new Map();  // "node/device" → {name, kind} from /hardware
let holding = false;
const HISTORY_EVERY_MS = 30_000;  // recorded rows land every 10 s; live samples fill between

const keyOf = (d) => `${d.node_id}/${d.device_id}`;

function chartFor(d) {
  const key = keyOf(d);
  if (!charts.has(key)) {
    const info = known.get(key) || d;
    const chart = new DeviceChart({
      title: `${info.name || d.device_id} · ${d.device_id} on ${d.node_id}`,
      withHost: (info.kind || "gpu") !== "cpu",  // a CPU slot's figures are the host's own
    });
    charts.set(key, chart);
    history.append(chart.figure);
  }
  return charts.get(key);
}

function showState() {
  none.hidden = charts.size > 0 || holding;
  panel.hidden = false;
}

function renderHeld(devices) {
  const keys = new Set(devices.map(keyOf));
  for (const [key, node] of cards) {
    if (!keys.has(key)) {
      node.closest("li")?.remove();
      cards.delete(key);
    }
  }
  for (const d of devices) {
    const key = keyOf(d);
    known.set(key, { name: d.name, kind: d.kind });
    if (!cards.has(key)) {
      const body = el("div", { class: "hw-sample" });
      list.append(el("li", { class: "hw-device" },
        el("h3", {}, d.name || d.device_id, " ",
          el("span", { class: "muted" }, `${d.device_id} on ${d.node_id}`)),
        body));
      cards.set(key, body);
    }
    if (d.sample) cards.get(key).replaceChildren(sampleBlock(d.sample, d.kind));
    else if (!cards.get(key).childElementCount) cards.get(key).replaceChildren(sampleBlock(null));
  }
}

async function loadHistory() {
  try {
    const response = await fetch(`/api/v1/jobs/${encodeURIComponent(jobId)}/hardware/history`);
    if (!response.ok) return;
    for (const d of (await response.json()).devices || []) {
      if (!known.has(keyOf(d))) known.set(keyOf(d), { name: d.name, kind: d.kind });
      chartFor(d).set(d);
    }
  } catch {
    /* offline for a moment: the next load tries again */
  }
  showState();
}

async function refresh() {
  try {
    const response = await fetch(`/api/v1/jobs/${encodeURIComponent(jobId)}/hardware`);
    if (!response.ok) return;
    const devices = (await response.json()).devices || [];
    renderHeld(devices);
    const was = holding;
    holding = devices.length > 0;
    if (was && !holding) loadHistory();  // the lease ended: the final recorded series
    showState();
  } catch {
    /* offline for a moment: the next poll tries again */
  }
}

if (panel && jobId) {
  // Which devices the job holds changes rarely (lease granted, released, expired): poll that;
  // their numbers arrive about once a second as `gpu` events on the job's stream (model.js).
  addEventListener("digits:gpu", (event) => {
    for (const s of event.detail.devices || []) {
      cards.get(keyOf(s))?.replaceChildren(sampleBlock(s, known.get(keyOf(s))?.kind));
      chartFor(s).add(s);
    }
    showState();
  });
  refresh().then(loadHistory);
  setInterval(refresh, 5000);
  setInterval(() => holding && loadHistory(), HISTORY_EVERY_MS);
}
