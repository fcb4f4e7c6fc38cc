// Home: datasets and models tables, loaded from /completed_jobs.json and kept live by /events.
import { connectLive } from "./live.js";
import { sparkline } from "./sparkline.js";
import { RUNNING, badge, el, setBadge, timeEl, toDate } from "./util.js";

const $ = (id) => document.getElementById(id);
const jobs = new Map();  // id → {kind, row, data}
let loaded = false;
const pending = [];  // live events that arrived while the first list was loading

function kindOf(type, job = {}) {
  const t = String(type || "");
  if (t.startsWith("model")) return "models";
  if (t === "pretrained_model") return "pretrained_models";
  if (t.startsWith("dataset")) return "datasets";
  if (type) return null;
  return job.dataset_id || job.framework ? "models" : "datasets";
}

function progressCell(entry) {
  const { data } = entry;
  const cell = entry.row.cells[3];
  const p = typeof data.progress === "number" ? data.progress : NaN;
  const pct = Number.isFinite(p) ? Math.max(0, Math.min(100, Math.round(p <= 1 ? p * 100 : p))) : null;
  if (RUNNING.has(data.status)) {
    cell.replaceChildren(el("div", {},
      el("progress", { max: 100, value: pct ?? undefined, "aria-label": `Progress of ${data.name || data.id}` }),
      el("span", {}, pct === null ? "waiting" : `${pct} %`),
    ));
  } else {
    cell.replaceChildren(el("span", {}, data.status === "Done" ? "100 %" : "—"));
  }
  const line = entry.kind === "models" ? sparkline(data.loss_sparkline) : null;
  if (line) cell.append(line);
}

function buildRow(kind, data) {
  const submitted = toDate(data.submitted ?? data.created ?? data["creation time"]);
  const row = el("tr", { dataset: { jobId: data.id } },
    el("td", { "data-label": "Name" }, el("div", {},
      el("a", { href: `/${kind}/${encodeURIComponent(data.id)}` }, data.name || data.id),
      el("span", { class: "job-id" }, data.id))),
    el("td", { "data-label": "Status" }, badge(data.status)),
    el("td", { "data-label": "Submitted" }, submitted ? timeEl(submitted, { relative: true }) : "—"),
    el("td", { "data-label": "Progress", class: "progress-cell" }),
  );
  // Newest first: job ids start with their creation time (YYYYMMDD-HHMMSS-xxxx).
  const body = $(`${kind}-rows`);
  const after = [...body.rows].find((r) => r.dataset.jobId < data.id);
  body.insertBefore(row, after || null);
  return row;
}

function upsert(kind, data) {
  let entry = jobs.get(data.id);
  if (!entry) {
    entry = { kind, data: { ...data }, row: null };
    entry.row = buildRow(kind, entry.data);
    jobs.set(data.id, entry);
  } else {
    for (const [k, v] of Object.entries(data)) if (v !== undefined && v !== null) entry.data[k] = v;
    const link = entry.row.cells[0].querySelector("a");
    if (data.name) link.textContent = data.name;
    setBadge(entry.row.cells[1].querySelector(".badge"), entry.data.status);
  }
  progressCell(entry);
  return entry;
}

function remove(id) {
  const entry = jobs.get(id);
  if (!entry) return;
  entry.row.remove();
  jobs.delete(id);
}

function counts() {
  for (const kind of ["datasets", "models", "pretrained_models"]) {
    const n = $(`${kind}-rows`).rows.length;
    $(`${kind}-count`).textContent = `(${n})`;
    const empty = $(`${kind}-empty`);
    if (n) empty.replaceChildren();
    else if (loaded && kind === "pretrained_models") {
      empty.replaceChildren("No pretrained models yet: upload one below, or make one from a model's page.");
    } else if (loaded) {
      const noun = kind === "models" ? "model" : "dataset";
      empty.replaceChildren(`No ${kind} yet. `,
        el("a", { href: `/${kind}/images/classification/new` }, `Create a ${noun}`), ".");
    }
  }
}

function announce(text) {
  $("announce").textContent = text;
}

const handlers = {
  history(h) {
    // A full list of jobs (first message of a fresh stream): add, update, drop what is gone.
    if (!Array.isArray(h.jobs)) return;
    const present = new Set();
    for (const job of h.jobs) {
      const kind = job.id && (jobs.get(job.id)?.kind ?? kindOf(job.type, job));
      if (!kind) continue;
      present.add(job.id);
      upsert(kind, job);
    }
    for (const id of [...jobs.keys()]) if (!present.has(id)) remove(id);
  },
  status(e) {
    const known = jobs.get(e.job_id);
    const kind = known?.kind ?? kindOf(e.type);
    if (!kind) return;
    const data = { id: e.job_id, name: e.name, status: e.status };
    if (!known) data.submitted = Date.now() / 1000;
    const entry = upsert(kind, data);
    if (known) announce(`${entry.data.name || e.job_id}: ${e.status}`);
  },
  progress(e) {
    const entry = jobs.get(e.job_id);
    if (!entry) return;
    entry.data.progress = e.progress;
    progressCell(entry);
  },
  deleted(e) {
    remove(e.job_id);
  },
};

function apply(type, payload) {
  if (!payload || (type !== "history" && !payload.job_id)) return;
  handlers[type](payload);
  counts();
}

async function getJSON(url) {
  const response = await fetch(url, { headers: { Accept: "application/json" } });
  if (!response.ok) throw new Error(`${url}: ${response.status}`);
  return response.json();
}

async function load() {
  try {
    let data;
    try {
      data = await getJSON("/completed_jobs.json");
    } catch {
      data = await getJSON("/index.json");
    }
    for (const job of data.running || []) {
      const kind = kindOf(job.type, job);
      if (kind && job.id) upsert(kind, job);
    }
    for (const job of data.datasets || []) if (job.id) upsert("datasets", job);
    for (const job of data.models || []) if (job.id) upsert("models", job);
    for (const job of data.pretrained_models || []) if (job.id) upsert("pretrained_models", job);
  } catch (error) {
    const box = $("load-error");
    box.textContent = `Could not load the job list (${error.message}). Live updates still arrive below.`;
    box.hidden = false;
  }
  loaded = true;
  for (const [type, payload] of pending.splice(0)) apply(type, payload);
  counts();
}

const live = {};
for (const type of Object.keys(handlers)) {
  live[type] = (payload) => (loaded ? apply(type, payload) : pending.push([type, payload]));
}
connectLive("/events", live);
load();
