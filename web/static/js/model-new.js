// New-model form: fields shown per solver/policy, LR schedule preview (computed here, no
// round trip), dataset summary, and `?clone=<id>` filling the form from a job's saved fields.
import uPlot from "uplot";
import { POLICY_FIELDS, schedule } from "../lib/lr.js";
import { cssColor } from "./charts.js";
import { initNetworks } from "./model-network.js";
import { initValidation } from "./model-validate.js";
import { el } from "./util.js";

const $ = (id) => document.getElementById(id);
const form = $("model-form");
const LR_NAMES = ["learning_rate", "lr_policy", ...new Set(Object.values(POLICY_FIELDS).flat())];

function showDependentFields() {
  const policy = $("lr_policy").value;
  for (const group of form.querySelectorAll(".policy-fields")) group.hidden = group.dataset.policy !== policy;
  $("rms-fields").hidden = $("solver_type").value !== "RMSPROP";
  $("hsv-fields").hidden = !$("aug_hsv_use").checked;
}

// ---- LR preview -------------------------------------------------------------------------
const preview = { chart: null, series: -1, width: 0 };
const RATE = new Intl.NumberFormat("en-US", { maximumSignificantDigits: 4, useGrouping: false });

/** A learning rate, one format for every row and tick: 4 significant digits, plain down to
 * 1e-4 ("0.004082", "0.000769"), an exponent only below ("7.69e-5"). */
export function fmtRate(x) {
  if (!Number.isFinite(x)) return "—";
  if (x !== 0 && Math.abs(x) < 1e-4) return Number(x.toPrecision(4)).toExponential();
  return RATE.format(x);
}

function lrParams() {
  return Object.fromEntries(LR_NAMES.map((name) => [name, form.elements[name]?.value ?? ""]));
}

function chartOptions(count, width) {
  const color = cssColor("--chart-lr");
  const axisColor = cssColor("--chart-axis");
  const grid = { stroke: cssColor("--chart-grid"), width: 1 };
  const dashes = [[], [8, 4], [2, 3], [12, 4, 2, 4]];
  return {
    width, height: 180,
    scales: { x: { time: false }, y: { range: (u, min, max) => [0, max > 0 ? max * 1.1 : 1] } },
    series: [
      { label: "Training (%)" },
      ...Array.from({ length: count }, (_, i) => ({
        label: `Learning rate ${i}`, stroke: color, width: 2, dash: dashes[i % dashes.length],
        value: (u, v) => (v == null ? "—" : fmtRate(v)),
      })),
    ],
    axes: [
      { stroke: axisColor, grid, ticks: grid, label: "Training (%)" },
      { stroke: axisColor, grid, ticks: grid, size: 70, values: (u, s) => s.map(fmtRate) },
    ],
    legend: { show: count > 1, live: false },
    cursor: { drag: { x: false, y: false } },
  };
}

/** Redraw the schedule from the current fields (every input/change event). */
export function drawPreview(rebuild = false) {
  const box = $("lr-preview");
  const { xs, series, rates } = schedule(lrParams());
  const clean = series.map((s) => s.map((v) => (Number.isFinite(v) ? v : null)));
  const valid = rates.every(Number.isFinite) && clean.every((s) => s.every((v) => v !== null));
  const width = Math.max(200, Math.floor(box.clientWidth));
  if (rebuild || !preview.chart || preview.series !== clean.length) {
    preview.chart?.destroy();
    preview.chart = new uPlot(chartOptions(clean.length, width), [xs, ...clean], box);
    preview.series = clean.length;
    preview.width = width;
  } else {
    preview.chart.setData([xs, ...clean]);
  }
  box.dataset.points = JSON.stringify(clean[0].map((v) => (v === null ? null : Number(v.toPrecision(6)))));
  $("lr-preview-text").textContent = valid
    ? rates.length > 1
      ? `${rates.length} schedules (one model per learning rate).`
      : `Starts at ${fmtRate(clean[0][0])}, ${fmtRate(clean[0][50])} at half-way, ends at ${fmtRate(clean[0][100])}.`
    : "Check the learning rate and the policy fields: the schedule cannot be computed.";
}

function watchPreview() {
  for (const name of LR_NAMES) {
    const field = form.elements[name];
    field?.addEventListener("input", () => drawPreview());
    field?.addEventListener("change", () => drawPreview());
  }
  new ResizeObserver(() => {
    const width = Math.max(200, Math.floor($("lr-preview").clientWidth));
    if (preview.chart && width !== preview.width) {
      preview.width = width;
      preview.chart.setSize({ width, height: 180 });
    }
  }).observe($("lr-preview"));
  document.addEventListener("themechange", () => drawPreview(true));
}

// ---- Dataset summary --------------------------------------------------------------------
let summaryFor = "";

export async function showDatasetSummary() {
  const id = $("dataset").value;
  const box = $("dataset-summary");
  summaryFor = id;
  if (!id) {
    box.hidden = true;
    return;
  }
  let d;
  try {
    const response = await fetch(`/datasets/${encodeURIComponent(id)}.json`, { headers: { Accept: "application/json" } });
    if (!response.ok) throw new Error(String(response.status));
    d = await response.json();
  } catch (error) {
    console.warn("dataset summary not loaded", error);
    box.hidden = true;
    return;
  }
  if (summaryFor !== id) return;  // another dataset was chosen meanwhile
  const db = (d.CreateDbTasks || [])[0] || {};
  const parse = (d.ParseFolderTasks || [])[0] || {};
  const dims = db.image_width ? `${db.image_width}×${db.image_height}, ${db.image_channels === 1 ? "grayscale" : "colour"}` : "";
  const rows = [
    ["Status", d.status], ["Images", dims], ["Resize", d.resize_mode],
    ["Classes", parse.label_count ?? d.labels?.length],
    ["Training / validation", parse.train_count !== undefined ? `${parse.train_count} / ${parse.val_count ?? 0}` : ""],
  ].filter(([, v]) => v !== undefined && v !== null && v !== "");
  box.replaceChildren(...rows.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, String(v))]));
  box.hidden = rows.length === 0;
  form.dispatchEvent(new CustomEvent("datasetchange", { detail: { id, dataset: d } }));
}

// ---- Clone ------------------------------------------------------------------------------
function setField(name, value) {
  const fields = [...form.querySelectorAll(`[name="${CSS.escape(name)}"]`)];
  const text = String(value ?? "");
  for (const field of fields) {
    if (field.type === "hidden" && fields.length > 1) continue;  // a checkbox's "0" companion
    if (field.type === "radio") field.checked = field.value === text;
    else if (field.type === "checkbox") field.checked = ["1", "true", "on", "yes", "y"].includes(text.split(",").pop().trim().toLowerCase());
    else field.value = text;
  }
  return fields.length > 0;
}

/** The clone's own name, as dataset clones get one: "name (clone)" (never "(clone) (clone)"). */
function cloneName(original) {
  const name = form.elements.model_name;
  const base = (name?.value || original).trim();
  if (name && base) name.value = base.endsWith(" (clone)") ? base : `${base} (clone)`;
}

async function cloneFrom(id) {
  try {
    const response = await fetch(`/models/${encodeURIComponent(id)}.json`, { headers: { Accept: "application/json" } });
    if (!response.ok) throw new Error(String(response.status));
    const job = await response.json();
    const saved = job.form || {};
    const later = [];
    for (const [name, value] of Object.entries(saved)) {
      if (name === "dataset") $("dataset").dataset.selected = value;
      if (!setField(name, value)) later.push([name, value]);  // e.g. `<job>-snapshot`, added later
    }
    cloneName(job.name || saved.model_name || "");
    form.dispatchEvent(new CustomEvent("cloned", { detail: { form: saved, later } }));
    $("clone-note")?.remove();
    $("model-form").before(el("p", { class: "help", id: "clone-note", role: "status" },
      `Options copied from “${job.name || id}”.`));
  } catch (error) {
    console.warn("clone failed", error);
  }
  showDependentFields();
  drawPreview();
}

// ---- Wiring -----------------------------------------------------------------------------
for (const id of ["lr_policy", "solver_type", "aug_hsv_use"]) $(id).addEventListener("change", showDependentFields);
$("dataset").addEventListener("change", showDatasetSummary);
showDependentFields();
watchPreview();
drawPreview();
initNetworks(form);
initValidation(form);
const clone = new URLSearchParams(location.search).get("clone");
if (clone) cloneFrom(clone).then(showDatasetSummary);
// forms.js fills the dataset list asynchronously; summarise whatever ends up selected.
new MutationObserver(() => { if ($("dataset").value !== summaryFor) showDatasetSummary(); })
  .observe($("dataset"), { childList: true });
showDatasetSummary();
