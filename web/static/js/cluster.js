// Cluster page: nodes, devices and their holders, the queue; live telemetry from /events, and
// each device's last hour charted (GET /api/v1/cluster/history, then the live samples).
import { connectLive } from "./live.js";
import { el } from "./util.js";
import { deviceWord, sampleBlock } from "./devices.js";
import { DeviceChart } from "./device-charts.js";

const $ = (id) => document.getElementById(id);
const samples = new Map();  // "node/device" → sample container
const kinds = new Map();  // "node/device" → "gpu" | "cpu" (live samples do not say)
const charts = new Map();  // "node/device" → DeviceChart, kept across the 3 s re-renders
const HOUR = 3600;

function chartFor(nodeId, deviceId) {
  const key = `${nodeId}/${deviceId}`;
  if (!charts.has(key)) {
    charts.set(key, new DeviceChart({
      title: "Last hour",
      withHost: false,  // the host's CPU/RAM belong to the node, not to one of its devices
      span: HOUR,
      height: 130,
      empty: "No telemetry recorded in the last hour.",
    }));
  }
  return charts.get(key);
}

function queueTable(queue) {
  if (!queue.length) return el("p", { class: "muted" }, "No job is waiting.");
  const head = el("tr", {}, ...["#", "Job", "Owner", "Priority", "Asks for", "Waiting for"]
    .map((h) => el("th", { scope: "col" }, h)));
  const rows = queue.map((q) => el("tr", { dataset: { jobId: q.job_id } },
    el("td", { class: "num", "data-label": "#" }, q.position ? String(q.position) : "–"),
    el("td", { "data-label": "Job" }, el("a", { href: `/models/${encodeURIComponent(q.job_id)}` }, q.name || q.job_id)),
    el("td", { "data-label": "Owner" }, q.username || "—"),
    el("td", { class: "num", "data-label": "Priority" }, String(q.priority ?? 0)),
    el("td", { "data-label": "Asks for" }, q.device_indexes?.length ? `device ${q.device_indexes.join(", ")}` : `${q.count} device${q.count === 1 ? "" : "s"}`),
    el("td", { "data-label": "Waiting for" }, q.waiting_for || ""),
  ));
  return el("table", { class: "jobs queue-table" }, el("thead", {}, head), el("tbody", {}, ...rows));
}

function nodeCard(node, index) {
  const id = `node-${index}`;
  const devices = node.devices.map((d) => {
    const key = `${node.node_id}/${d.device_id}`;
    kinds.set(key, d.kind);
    const body = el("div", { class: "hw-sample" }, sampleBlock(d.sample, d.kind));
    samples.set(key, body);
    const holder = d.holder
      ? el("p", { class: "holder" }, "Held by ", el("a", { href: `/models/${encodeURIComponent(d.holder.job_id)}` }, d.holder.name || d.holder.job_id))
      : el("p", { class: "holder" }, el("span", { class: "free" }, "Free"));
    return el("li", { class: "device-card" },
      el("h3", {}, d.name || d.device_id, " ", el("span", { class: "muted" }, d.device_id)),
      holder, body, chartFor(node.node_id, d.device_id).figure);
  });
  return el("section", { class: "card node", "aria-labelledby": id },
    el("h2", { id }, "Node ", el("code", {}, node.node_id),
      node.alive ? null : el("span", { class: "badge status-aborted" }, "gone")),
    el("ul", { class: "device-grid" }, ...devices));
}

function render(c) {
  $("cluster-summary").textContent = `${c.available} of ${c.total} ${deviceWord(c.kind, c.total)} available`;
  $("queue-count").textContent = `(${c.queue.length})`;
  $("queue").replaceChildren(queueTable(c.queue));
  samples.clear();
  const nodes = c.nodes.map(nodeCard);
  $("nodes").replaceChildren(...(nodes.length ? nodes : [el("p", { class: "muted" }, "No gpu-broker has announced devices yet.")]));
}

async function refresh() {
  try {
    const response = await fetch("/api/v1/cluster");
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    render(await response.json());
    $("load-error").hidden = true;
  } catch (e) {
    $("load-error").textContent = `Could not load the cluster: ${e.message}`;
    $("load-error").hidden = false;
  }
}

async function loadHistory() {
  try {
    const response = await fetch(`/api/v1/cluster/history?minutes=${HOUR / 60}`);
    if (!response.ok) return;
    for (const d of (await response.json()).devices || []) chartFor(d.node_id, d.device_id).set(d);
  } catch {
    /* offline for a moment: the next load tries again */
  }
}

refresh().then(loadHistory);
setInterval(refresh, 3000);  // leases and the queue change rarely; telemetry comes live below
setInterval(loadHistory, 60_000);  // the recorded 10 s rows replace the live points between
connectLive("/events", {
  gpu(e) {
    for (const s of e.devices || []) {
      const key = `${s.node_id}/${s.device_id}`;
      samples.get(key)?.replaceChildren(sampleBlock(s, kinds.get(key)));
      chartFor(s.node_id, s.device_id).add(s);
    }
  },
});
