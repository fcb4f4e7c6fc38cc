// Network tabs of the new-model form (WAI-ARIA tabs): standard networks with "Customize",
// previous jobs' snapshots, and a custom Gluon editor with a live graph of the network.
import { attachEditor, selectLine } from "./editor.js";
import { drawGraph, fmtCount } from "./graph.js";
import { csrfHeaders, el, fmtEpoch } from "./util.js";

const $ = (id) => document.getElementById(id);
const DEBOUNCE_MS = 500;

function initTabs(form) {
  const tabs = [...document.querySelectorAll('#network-tabs [role="tab"]')];
  const select = (tab, focus) => {
    for (const t of tabs) {
      const on = t === tab;
      t.setAttribute("aria-selected", String(on));
      t.tabIndex = on ? 0 : -1;
      $(t.getAttribute("aria-controls")).hidden = !on;
    }
    $("method").value = tab.dataset.method;
    if (focus) tab.focus();
    form.dispatchEvent(new CustomEvent("methodchange", { detail: tab.dataset.method }));
  };
  for (const tab of tabs) {
    tab.addEventListener("click", () => select(tab, true));
    tab.addEventListener("keydown", (event) => {
      const i = tabs.indexOf(tab);
      const next = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: tabs.length - 1 }[event.key];
      if (next === undefined) return;
      event.preventDefault();
      select(tabs[(next + tabs.length) % tabs.length], true);
    });
  }
  return (method, focus = false) => select(tabs.find((t) => t.dataset.method === method) || tabs[0], focus);
}

/** POST a form to a JSON route; returns [status, body] (body null when not JSON). */
async function postForm(url, fields) {
  const body = new FormData();
  for (const [k, v] of Object.entries(fields)) if (v !== undefined && v !== null) body.append(k, v);
  const response = await fetch(url, { method: "POST", body, headers: csrfHeaders({ Accept: "application/json" }) });
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  return [response.status, data];
}

const firstError = (data, field) => {
  const errors = data?.errors || {};
  return (errors[field] || Object.values(errors)[0] || [])[0] || data?.error?.message || "";
};

function initGraph(form, area) {
  let timer = 0;
  let sequence = 0;
  const status = $("graph-status");
  const box = $("network-error");

  async function refresh() {
    clearTimeout(timer);
    const source = area.value;
    const mine = ++sequence;
    if (!source.trim()) {
      status.textContent = "The graph appears here as you type.";
      box.hidden = true;
      $("network-graph").replaceChildren();
      return;
    }
    status.textContent = "Building the network…";
    let code;
    let data;
    try {
      [code, data] = await postForm("/models/visualize-network", {
        custom_network: source, dataset_id: $("dataset").value || undefined,
      });
    } catch (error) {
      if (mine === sequence) status.textContent = "The graph could not be loaded (network error).";
      return;
    }
    if (mine !== sequence) return;  // the text changed while this request ran
    if (code === 200 && data?.nodes) {
      const { count } = drawGraph($("network-graph"), data);
      status.textContent = `${count} layers, ${fmtCount(data.total_params)} parameters.`;
      box.hidden = true;
      area.removeAttribute("aria-invalid");
      return;
    }
    const message = firstError(data, "custom_network") || `The network could not be built (HTTP ${code}).`;
    const line = Number((message.match(/line (\d+)/i) || [])[1]);
    const source_line = line ? source.split("\n")[line - 1] : undefined;
    box.replaceChildren(el("span", {}, message),
      ...(source_line !== undefined ? [el("pre", {}, `${line} | ${source_line}`)] : []));
    box.hidden = false;
    area.setAttribute("aria-invalid", "true");
    if (line && document.activeElement !== area) selectLine(area, line);
    status.textContent = "The network has an error: the last good graph is kept below.";
  }

  area.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(refresh, DEBOUNCE_MS);
  });
  form.addEventListener("datasetchange", () => { if (area.value.trim()) refresh(); });
  return refresh;
}

function initCustomize(form, showTab, area, refresh) {
  form.addEventListener("click", async (event) => {
    const button = event.target.closest("[data-customize]");
    if (!button) return;
    const network = button.dataset.customize;
    const snapshot = button.dataset.snapshotFrom ? form.elements[button.dataset.snapshotFrom]?.value : undefined;
    button.disabled = true;
    try {
      const [code, data] = await postForm("/models/customize", { network, snapshot_epoch: snapshot });
      if (code !== 200 || typeof data?.network !== "string") {
        throw new Error(firstError(data, "network") || `HTTP ${code}`);
      }
      area.value = data.network;
      showTab("custom", false);
      area.focus();
      area.setSelectionRange(0, 0);
      area.scrollTop = 0;
      refresh();
    } catch (error) {
      $("graph-status").textContent = `Could not load that network: ${error.message}`;
      showTab("custom", false);
    } finally {
      button.disabled = false;
    }
  });
}

async function initPrevious(form) {
  const fieldset = $("previous_networks");
  let models;
  try {
    const response = await fetch("/index.json", { headers: { Accept: "application/json" } });
    if (!response.ok) throw new Error(String(response.status));
    models = ((await response.json()).models || []).filter((m) => m.id && (m.snapshots || []).length);
  } catch (error) {
    console.warn("previous networks not loaded", error);
    return;
  }
  if (!models.length) return;
  const wanted = fieldset.dataset.selected;
  const rows = models.map((m) => {
    const epochs = [...m.snapshots].sort((a, b) => b - a);
    const snapName = `${m.id}-snapshot`;
    const choose = el("select", { name: snapName, id: snapName, "aria-label": `Snapshot of ${m.name || m.id}` },
      ...epochs.map((e) => el("option", { value: fmtEpoch(e) }, `Epoch ${fmtEpoch(e)}`)));
    if (m.id === wanted && fieldset.dataset.snapshot) choose.value = fieldset.dataset.snapshot;
    const radio = el("input", { type: "radio", name: "previous_networks", value: m.id, id: `prev-${m.id}`,
      checked: m.id === wanted });
    return el("tr", {},
      el("td", {}, el("label", { class: "radio", for: `prev-${m.id}` }, radio, " ", m.name || m.id)),
      el("td", {}, m.network || ""),
      el("td", {}, choose),
      el("td", {}, el("button", { type: "button", class: "btn btn-small", "data-customize": m.id,
        "data-snapshot-from": snapName, "aria-label": `Customize ${m.name || m.id}` }, "Customize")));
  });
  $("previous-list").replaceChildren(el("table", { class: "previous-table" },
    el("thead", {}, el("tr", {}, ...["Model", "Network", "Snapshot", ""].map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, ...rows)));
  form.dispatchEvent(new CustomEvent("previousready"));
}

async function initPretrained() {
  const fieldset = $("pretrained_networks");
  let models;
  try {
    const response = await fetch("/index.json", { headers: { Accept: "application/json" } });
    if (!response.ok) throw new Error(String(response.status));
    models = ((await response.json()).pretrained_models || []).filter((m) => m.id);
  } catch (error) {
    console.warn("pretrained networks not loaded", error);
    return;
  }
  if (!models.length) return;
  const wanted = fieldset.dataset.selected;
  const rows = models.map((m) => {
    const dims = m["image dimensions"] || [];
    const radio = el("input", { type: "radio", name: "pretrained_networks", value: m.id, id: `pre-${m.id}`,
      checked: m.id === wanted, disabled: !m.fine_tunable });
    return el("tr", {},
      el("td", {}, el("label", { class: "radio", for: `pre-${m.id}` }, radio, " ", m.name || m.id,
        " ", el("span", { class: "job-id" }, m.id))),
      el("td", {}, dims.length === 3 ? `${dims[1]}×${dims[0]}×${dims[2]}` : ""),
      el("td", {}, `${(m.labels || []).length} classes`),
      el("td", {}, m.fine_tunable ? "" : "classifies only (no network to rebuild)"));
  });
  $("pretrained-list").replaceChildren(el("table", { class: "previous-table" },
    el("thead", {}, el("tr", {}, ...["Pretrained model", "Input", "Labels", ""].map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, ...rows)));
}

/** Wire the network section of `form`. */
export function initNetworks(form) {
  const area = $("custom_network");
  attachEditor(area);
  const showTab = initTabs(form);
  const refresh = initGraph(form, area);
  initCustomize(form, showTab, area, refresh);
  const previous = initPrevious(form);
  initPretrained();
  form.addEventListener("cloned", async (event) => {
    const saved = event.detail.form;
    showTab(saved.method || "standard");
    await previous;
    for (const [name, value] of event.detail.later) {
      const field = form.elements[name];
      if (field && "value" in field) field.value = value;
    }
    if (area.value.trim()) refresh();
  });
  form.addEventListener("methodchange", (event) => {
    if (event.detail === "custom" && area.value.trim() && !$("network-graph").firstChild) refresh();
  });
  if ($("method").value === "custom" && area.value.trim()) refresh();
}
