// Home: datasets, models and pretrained models as one job list per kind, rows grouped by job
// group, searched / filtered / sorted from the URL (home-query.js), loaded from
// /completed_jobs.json and kept live by /events (a running model's sparkline and metric
// columns are re-read, throttled, as its progress arrives).
import { FILTERS, comparator, matches, readState, writeState } from "./home-query.js";
import { checkbox, clearSelection, forget, refreshBar, setupSelection } from "./home-select.js";
import { renderTags } from "./home-tags.js";
import { connectLive } from "./live.js";
import { sparkline } from "./sparkline.js";
import { RUNNING, badge, el, fmtDuration, fmtLoss, setBadge, timeEl, toDate } from "./util.js";

const $ = (id) => document.getElementById(id);
const root = $("home");
const LISTING = root.dataset.listing || "/completed_jobs.json";
const ME = root.dataset.me || "";
const ROLE = root.dataset.role || "";
const KINDS = ["datasets", "models", "pretrained_models"];
const REFRESH_MS = 2000;  // at most one re-read of running models' metrics per this
const jobs = new Map();  // id → {kind, row, data}
let state = readState();
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

const mayChange = (owner) => ROLE === "admin" || (ROLE === "user" && ME !== "" && ME === owner);

function progressCell(entry) {
  const { data } = entry;
  const cell = entry.row.querySelector(".progress-cell");
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

/** Seconds the job has run: the server's figure, counted on while it runs. */
function durationNow(data) {
  if (typeof data.duration !== "number") return null;
  return RUNNING.has(data.status) ? data.duration + (Date.now() - data.receivedAt) / 1000 : data.duration;
}

function fillCells(entry) {
  const { data, row } = entry;
  row.querySelector(".job-link").textContent = data.name || data.id;
  setBadge(row.querySelector(".badge"), data.status);
  row.querySelector(".owner-cell").textContent = data.username || "—";
  const acc = row.querySelector(".acc-cell");
  if (acc) {
    const x = data.best_val_accuracy;
    acc.textContent = Number.isFinite(x) ? `${(x * 100).toFixed(2)} %` : "—";
    row.querySelector(".loss-cell").textContent = Number.isFinite(data.final_train_loss) ? fmtLoss(data.final_train_loss) : "—";
  }
  row.querySelector(".duration-cell").textContent = fmtDuration(durationNow(data)) || "—";
  const box = row.querySelector(".tags-box");
  const key = JSON.stringify([data.tags || [], data.name]);
  // Redrawn only when the tags changed, and never under an open editor.
  if (box.dataset.key !== key && !box.querySelector(".tag-form")) {
    box.dataset.key = key;
    drawTags(entry, box);
  }
  progressCell(entry);
}

function drawTags(entry, box) {
  const { data, row } = entry;
  renderTags(box, data, {
    editable: mayChange(data.username),
    onFilter: (tag) => setState({ ...state, tag }, "push"),
    onSaved: (tags) => {
      data.tags = tags;
      box.dataset.key = "";
      fillCells(entry);
      fillOptions();
      row.querySelector(".tag-edit")?.focus();
    },
  });
}

function buildRow(kind, data) {
  const submitted = toDate(data.submitted ?? data.created ?? data["creation time"]);
  const metricCells = kind === "models" ? [
    el("td", { "data-label": "Best val acc.", class: "num acc-cell" }),
    el("td", { "data-label": "Final loss", class: "num loss-cell" }),
  ] : [];
  return el("tr", { dataset: { jobId: data.id } },
    el("td", { class: "select-cell", "data-label": "Select" }, checkbox(data)),
    el("td", { "data-label": "Name", class: "name-cell" }, el("div", {},
      el("a", { class: "job-link", href: `/${kind}/${encodeURIComponent(data.id)}` }, data.name || data.id),
      el("span", { class: "job-id" }, data.id),
      el("div", { class: "tags-box" }))),
    el("td", { "data-label": "Status" }, badge(data.status)),
    el("td", { "data-label": "Owner", class: "owner-cell" }),
    el("td", { "data-label": "Submitted" }, submitted ? timeEl(submitted, { relative: true }) : "—"),
    ...metricCells,
    el("td", { "data-label": "Duration", class: "num duration-cell" }),
    el("td", { "data-label": "Progress", class: "progress-cell" }),
  );
}

function upsert(kind, data) {
  let entry = jobs.get(data.id);
  if (!entry) {
    entry = { kind, data: { ...data, receivedAt: Date.now() }, row: null };
    entry.row = buildRow(kind, entry.data);
    jobs.set(data.id, entry);
  } else {
    for (const [k, v] of Object.entries(data)) if (v !== undefined && v !== null) entry.data[k] = v;
    if ("duration" in data) entry.data.receivedAt = Date.now();
  }
  fillCells(entry);
  return entry;
}

function remove(id) {
  const entry = jobs.get(id);
  if (!entry) return;
  entry.row.remove();
  jobs.delete(id);
  forget(id);
}

// --- grouping, filtering and sorting ------------------------------------------------------

function groupBody(kind, group) {
  if (!group) return $(`${kind}-rows`);
  const table = $(`${kind}-table`);
  const found = [...table.tBodies].find((b) => b.dataset.group === group);
  if (found) return found;
  const columns = table.tHead.rows[0].cells.length;
  const link = kind === "models"
    ? el("a", { class: "group-compare", href: `/models/compare?group=${encodeURIComponent(group)}` }, "Compare group")
    : null;
  const body = el("tbody", { class: "job-group", dataset: { group } },
    el("tr", { class: "group-head" }, el("th", { colspan: columns, scope: "rowgroup" },
      el("span", { class: "group-label" }, "Group "), el("strong", {}, group), " ",
      el("span", { class: "count group-count" }), link ? " " : null, link)));
  if (link) link.setAttribute("aria-label", `Compare the models of group ${group}`);
  const after = [...table.tBodies].find((b) => b.dataset.group && b.dataset.group.localeCompare(group) > 0);
  table.insertBefore(body, after || null);
  return body;
}

/** Put every row in its group's body, in the sort order, hidden unless it matches. Rows move
 *  only when their order changed, so a focused checkbox keeps its focus. */
function layout() {
  const order = comparator(state);
  for (const kind of KINDS) {
    const entries = [...jobs.values()].filter((e) => e.kind === kind).sort((a, b) => order(a.data, b.data));
    const byGroup = new Map();
    for (const entry of entries) {
      const group = entry.data.group || "";
      if (!byGroup.has(group)) byGroup.set(group, []);
      byGroup.get(group).push(entry);
    }
    for (const [group, members] of byGroup) {
      const body = groupBody(kind, group);
      const rows = members.map((e) => e.row);
      const current = [...body.rows].filter((r) => r.dataset.jobId);
      if (current.length !== rows.length || current.some((r, i) => r !== rows[i])) {
        for (const row of rows) body.append(row);
      }
      let shown = 0;
      for (const entry of members) {
        entry.row.hidden = !matches(entry.data, state);
        if (!entry.row.hidden) shown += 1;
      }
      if (group) {
        body.hidden = shown === 0;
        body.querySelector(".group-count").textContent = shown === members.length ? `(${shown})` : `(${shown} of ${members.length})`;
      }
    }
    for (const body of $(`${kind}-table`).tBodies) {
      if (body.dataset.group && !byGroup.has(body.dataset.group)) body.remove();
    }
  }
  counts();
  sortHeaders();
  refreshBar();
}

function sortHeaders() {
  for (const th of document.querySelectorAll("th[data-col]")) {
    th.setAttribute("aria-sort", th.dataset.col !== state.sort ? "none" : state.dir === "asc" ? "ascending" : "descending");
  }
}

function counts() {
  for (const kind of KINDS) {
    const rows = [...$(`${kind}-table`).querySelectorAll("tr[data-job-id]")];
    const shown = rows.filter((r) => !r.hidden).length;
    $(`${kind}-count`).textContent = shown === rows.length ? `(${rows.length})` : `(${shown} of ${rows.length})`;
    const empty = $(`${kind}-empty`);
    if (shown) empty.replaceChildren();
    else if (rows.length) empty.replaceChildren("Nothing here matches the filters.");
    else if (loaded && kind === "pretrained_models") {
      empty.replaceChildren($("upload-pretrained")
        ? "No pretrained models yet: upload one below, or make one from a model's page."
        : "No pretrained models yet.");
    } else if (loaded) {
      const noun = kind === "models" ? "model" : "dataset";
      empty.replaceChildren(`No ${kind} yet. `,
        el("a", { href: `/${kind}/images/classification/new` }, `Create a ${noun}`), ".");
    }
  }
}

// --- the URL state and the filter form ------------------------------------------------------

const form = $("job-filter");

function syncForm() {
  form.elements.q.value = state.q;
  for (const name of FILTERS) {
    const select = form.elements[name];
    if (state[name] && ![...select.options].some((o) => o.value === state[name])) {
      select.append(el("option", { value: state[name] }, state[name]));
    }
    select.value = state[name];
  }
  form.elements.sort.value = state.sort;
  form.elements.dir.value = state.dir;
}

/** The filter selects offer the values the listed jobs have (plus the one chosen). */
function fillOptions() {
  const values = Object.fromEntries(FILTERS.map((f) => [f, new Set()]));
  for (const { data } of jobs.values()) {
    if (data.status) values.status.add(data.status);
    if (data.username) values.owner.add(data.username);
    if (data.group) values.group.add(data.group);
    if (data.network) values.network.add(data.network);
    for (const tag of data.tags || []) values.tag.add(tag);
  }
  for (const name of FILTERS) {
    if (state[name]) values[name].add(state[name]);
    const select = form.elements[name];
    const wanted = [...values[name]].sort((a, b) => a.localeCompare(b));
    const have = [...select.options].slice(1).map((o) => o.value);
    if (wanted.join("\n") === have.join("\n")) continue;
    select.replaceChildren(el("option", { value: "" }, "Any"), ...wanted.map((v) => el("option", { value: v }, v)));
    select.value = state[name];
  }
}

function setState(next, how) {
  state = next;
  const url = `${location.pathname}${writeState(state)}`;
  if (how === "push" && url !== `${location.pathname}${location.search}`) history.pushState(null, "", url);
  else history.replaceState(null, "", url);
  syncForm();
  layout();
}

function fromForm() {
  const next = { ...state, q: form.elements.q.value.trim(), sort: form.elements.sort.value, dir: form.elements.dir.value };
  for (const name of FILTERS) next[name] = form.elements[name].value;
  return next;
}

form.addEventListener("input", (event) => {
  if (event.target.name === "q") setState(fromForm(), "replace");  // typing: one history entry
});
form.addEventListener("change", (event) => {
  if (event.target.name !== "q") setState(fromForm(), "push");
});
form.addEventListener("submit", (event) => {
  event.preventDefault();
  setState(fromForm(), "push");
});
$("f-clear").addEventListener("click", () => {
  setState({ ...readState(""), sort: state.sort, dir: state.dir }, "push");
  form.elements.q.focus();
});
for (const button of document.querySelectorAll(".sort-button")) {
  button.addEventListener("click", () => {
    const key = button.dataset.sort;
    const textual = ["name", "owner", "status"].includes(key);
    const dir = key === state.sort ? (state.dir === "asc" ? "desc" : "asc") : textual ? "asc" : "desc";
    setState({ ...state, sort: key, dir }, "push");
  });
}
window.addEventListener("popstate", () => {
  state = readState();
  syncForm();
  layout();
});

// --- live updates --------------------------------------------------------------------------

const stale = new Set();  // running models whose metrics moved since the last re-read
let refreshTimer = null;

function refreshSoon(id) {
  stale.add(id);
  if (refreshTimer === null) refreshTimer = setTimeout(refreshMetrics, REFRESH_MS);
}

async function refreshMetrics() {
  const ids = [...stale].filter((id) => jobs.has(id));
  stale.clear();
  try {
    if (ids.length) {
      const data = await getJSON(`${LISTING}?ids=${ids.map(encodeURIComponent).join(",")}`);
      // Every bucket: a new job's group, owner and network come from here, not its first event.
      for (const job of KINDS.flatMap((k) => data[k] || []).concat(data.running || [])) {
        if (ids.includes(job.id) && jobs.has(job.id)) upsert(jobs.get(job.id).kind, job);
      }
      layout();
    }
  } catch {
    /* the next progress event tries again */
  } finally {
    refreshTimer = null;
    if (stale.size) refreshTimer = setTimeout(refreshMetrics, REFRESH_MS);
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
    const data = { id: e.job_id, name: e.name, status: e.status, tags: e.tags };
    if (!known) data.submitted = Date.now() / 1000;
    const entry = upsert(kind, data);
    if (known && known.data.status !== e.status) announce(`${entry.data.name || e.job_id}: ${e.status}`);
    else if (!known) announce(`${entry.data.name || e.job_id}: ${e.status}`);
    if (kind !== "pretrained_models") refreshSoon(e.job_id);  // duration and final numbers
  },
  progress(e) {
    const entry = jobs.get(e.job_id);
    if (!entry) return;
    entry.data.progress = e.progress;
    progressCell(entry);
    if (entry.kind === "models") refreshSoon(e.job_id);
  },
  deleted(e) {
    remove(e.job_id);
  },
};

function apply(type, payload) {
  if (!payload || (type !== "history" && !payload.job_id)) return;
  handlers[type](payload);
  fillOptions();
  layout();
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
      data = await getJSON(LISTING);
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
  fillOptions();
  syncForm();
  layout();
}

// Running jobs' durations count on between events.
setInterval(() => {
  for (const entry of jobs.values()) {
    if (RUNNING.has(entry.data.status) && typeof entry.data.duration === "number") {
      entry.row.querySelector(".duration-cell").textContent = fmtDuration(durationNow(entry.data));
    }
  }
}, 5000);

setupSelection((id) => jobs.get(id), (id) => {
  remove(id);
  layout();
});
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && !$("selection-bar").hidden && !document.querySelector("dialog[open], .tag-form")) clearSelection();
});
syncForm();
const live = {};
for (const type of Object.keys(handlers)) {
  live[type] = (payload) => (loaded ? apply(type, payload) : pending.push([type, payload]));
}
connectLive(root.dataset.events || "/events", live);
load();
