// Compare runs: curves overlaid (one chart per metric, one series per run), results best first,
// the settings that differ, and the sweep view. Polls /api/v1/compare while any run trains
// (one request every few seconds, not one stream per run: browsers cap connections per host).
// The charts' view (x axis, smoothing, log, hidden runs) is kept in the URL: a shared link shows the same.
import { readChartView, writeChartView } from "../lib/chart-view.js";
import { chartControls } from "./chart-controls.js";
import { cssColor, liveChart, xAxis, xSeries } from "./charts.js";
import { sweepPlot } from "./sweep.js";
import { badge, el, fmtDuration, fmtEpoch, fmtNumber } from "./util.js";

const POLL_MS = 4000;
const RUN_COLOURS = 8;  // --run-1 … --run-8 in compare.css; dashes tell more runs apart
const $ = (id) => document.getElementById(id);
const page = $("compare-page");
const query = page.dataset.group
  ? `group=${encodeURIComponent(page.dataset.group)}` : `ids=${encodeURIComponent(page.dataset.ids)}`;

const CHARTS = [
  { id: "train-loss", title: "Training loss", phase: "train", name: "loss" },
  { id: "val-loss", title: "Validation loss", phase: "val", name: "loss" },
  { id: "val-acc", title: "Validation accuracy (%)", phase: "val", name: "accuracy", scale: 100 },
  { id: "lr", title: "Learning rate", phase: "train", name: "learning_rate", steps: true },
];

let runs = [];
let charts = null;

const pct = (v) => (v === null || v === undefined ? "—" : `${(v * 100).toFixed(2)} %`);
const num = (v) => (v === null || v === undefined ? "—" : fmtNumber(v));
const setting = (v) => (v === null || v === undefined ? "—" : typeof v === "boolean" ? (v ? "yes" : "no") : String(v));
const runColour = (i) => cssColor(`--run-${(i % RUN_COLOURS) + 1}`);
const runDash = (i) => (i < RUN_COLOURS ? undefined : [6, 3]);

/** When a run's first point was measured (wall time runs from there, so runs overlay). */
function startOf(run) {
  const times = Object.values(run.metrics).flatMap((s) => s.time || []).filter((t) => t !== null);
  return times.length ? Math.min(...times) : 0;
}

/** Aligned data for one metric: the union of the runs' x values, one column per run. */
function metricData(spec, view) {
  const xKey = ["iteration", "time"].includes(view.x) ? view.x : "epoch";
  const perRun = runs.map((r) => {
    const s = r.metrics[spec.phase];
    const ys = s?.values[spec.name];
    const at = new Map();
    const t0 = xKey === "time" ? startOf(r) : 0;
    if (s && ys && s[xKey]) {
      s[xKey].forEach((x, i) => {
        if (ys[i] !== null && x !== null) at.set(x - t0, ys[i] * (spec.scale || 1));
      });
    }
    return at;
  });
  const xs = [...new Set(perRun.flatMap((m) => [...m.keys()]))].sort((a, b) => a - b);
  return [xs, ...perRun.map((m) => xs.map((x) => (m.has(x) ? m.get(x) : null)))];
}

/** A run's series label: its name, with the end of its id when another run has the same name. */
function labelOf(run) {
  const twins = runs.filter((r) => r.name === run.name).length;
  return twins > 1 ? `${run.name} · ${run.id.slice(-4)}` : run.name;
}

function chartOptions(spec) {
  return (c, width, view) => ({
    width,
    height: 240,
    scales: { x: { time: false }, y: { auto: true } },
    series: [
      xSeries(view.x),
      ...runs.map((r, i) => ({
        label: labelOf(r), stroke: runColour(i), width: r.id === bestId() ? 2.5 : 1.5, dash: runDash(i),
        spanGaps: true, value: (u, v) => (v == null ? "—" : fmtNumber(v)),
        smooth: !spec.steps,  // a learning rate steps: an average would draw a decay that never happened
      })),
    ],
    axes: [
      xAxis(c, view.x),
      { stroke: c.axis, grid: { stroke: c.grid, width: 1 }, ticks: { stroke: c.grid, width: 1 },
        size: 64, values: (u, splits) => splits.map(fmtNumber) },
    ],
    cursor: { drag: { x: true, y: false } },
    legend: { live: false },
  });
}

const bestId = () => lastView?.best_run;
let lastView = null;

function buildCharts() {
  const host = $("compare-charts");
  const anchor = el("div");
  host.replaceChildren(anchor);
  // Points recorded before the gateway kept their time have none: offer what every run has.
  const has = (key) => runs.every((r) => (r.metrics.train?.[key] || []).some((v) => v !== null));
  const asked = readChartView(location.search);
  const hiddenIds = new Set(asked.hidden);
  const controls = chartControls(anchor, {
    xModes: ["epoch", ...["iteration", "time"].filter(has)], label: "Chart controls (all four charts)",
    initial: { ...asked, hidden: runs.filter((r) => hiddenIds.has(r.id)).map(labelOf) },
    onChange: keepInUrl,
  });
  keepInUrl(controls.view);  // a bad value or an unknown run in a shared link leaves the URL
  const made = CHARTS.map((spec) => {
    const box = el("div", { class: "chart", id: `chart-${spec.id}`, role: "img", "aria-labelledby": `cap-${spec.id}` });
    host.append(el("figure", { class: "chart-figure" },
      el("figcaption", { id: `cap-${spec.id}` }, spec.title), box));
    return { spec, chart: liveChart(box, chartOptions(spec), (view) => metricData(spec, view), { controls }) };
  });
  return { made, controls };
}

/** The view in the URL (replaced, not pushed: Back leaves the page rather than undoing a toggle). */
function keepInUrl(view) {
  const hidden = runs.filter((r) => view.hidden.has(labelOf(r))).map((r) => r.id);
  const search = writeChartView(location.search, { ...view, hidden });
  if (search !== location.search) history.replaceState(history.state, "", `${location.pathname}${search}${location.hash}`);
}

function runLink(r, i) {
  return el("span", { class: "run-name" },
    el("span", { class: `run-swatch run-${(i % RUN_COLOURS) + 1}`, "aria-hidden": "true" }),
    el("a", { href: r.url }, r.name));
}

function showResults(view) {
  const numeric = view.settings.differ;
  const head = el("tr", {},
    el("th", { scope: "col" }, "#"), el("th", { scope: "col" }, "Run"), el("th", { scope: "col" }, "Status"),
    el("th", { scope: "col" }, "Best val accuracy"), el("th", { scope: "col" }, "Best val loss"),
    el("th", { scope: "col" }, "Final val loss"), el("th", { scope: "col" }, "Final train loss"),
    el("th", { scope: "col" }, "Duration"),
    ...numeric.map((row) => el("th", { scope: "col" }, row.label)));
  const order = new Map(runs.map((r, i) => [r.id, i]));
  const body = view.runs.map((r, rank) => {
    const s = r.summary;
    const i = order.get(r.id);
    return el("tr", { class: r.id === view.best_run ? "best-run" : null, dataset: { runId: r.id } },
      el("td", {}, String(rank + 1)),
      el("th", { scope: "row" }, runLink(r, i), r.id === view.best_run ? el("span", { class: "best-tag" }, " best") : null),
      el("td", {}, badge(r.status)),
      el("td", {}, s.best_val_accuracy === null ? "—"
        : `${pct(s.best_val_accuracy)} (epoch ${fmtEpoch(s.best_val_accuracy_epoch)})`),
      el("td", {}, num(s.best_val_loss)), el("td", {}, num(s.final_val_loss)),
      el("td", {}, num(s.final_train_loss)),
      el("td", {}, fmtDuration(r.duration_seconds) || "—"),
      ...numeric.map((row) => el("td", {}, setting(row.values[rank]))));
  });
  $("results-table").replaceChildren(el("thead", {}, head), el("tbody", {}, ...body));
  $("results-card").hidden = false;
}

function showSettings(view) {
  const { differ, same } = view.settings;
  $("settings-diff").replaceChildren(
    el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Setting"),
      ...view.runs.map((r) => el("th", { scope: "col" }, r.name)))),
    el("tbody", {}, ...differ.map((row) => el("tr", { dataset: { setting: row.key } },
      el("th", { scope: "row" }, row.label), ...row.values.map((v) => el("td", {}, setting(v)))))));
  $("settings-diff").hidden = differ.length === 0;
  $("settings-none").hidden = differ.length > 0;
  $("same-count").textContent = String(same.length);
  $("same-list").replaceChildren(...same.map((row) => el("div", { dataset: { setting: row.key } },
    el("dt", {}, row.label), el("dd", {}, setting(row.value)))));
  $("settings-card").hidden = false;
}

function show(view) {
  lastView = view;
  // Colours follow the first order seen: a run keeps its colour when the ranking changes.
  const byId = new Map(view.runs.map((r) => [r.id, r]));
  const same = runs.length === view.runs.length && runs.every((r) => byId.has(r.id));
  runs = same ? runs.map((r) => byId.get(r.id)) : view.runs;
  if (!charts) charts = buildCharts();
  else {
    charts.made.forEach(({ spec, chart }) => chart.set((v) => metricData(spec, v)));
    charts.controls.refreshSeries();
  }
  $("curves-card").hidden = false;
  showResults(view);
  showSettings(view);
  $("sweep-card").hidden = false;  // shown first: the plot is drawn at the card's width
  $("sweep-card").hidden = !sweepPlot($("sweep-plot"), view);
  const running = view.runs.filter((r) => !r.finished).length;
  $("compare-live").textContent = running
    ? `${running} of ${view.runs.length} runs still training: updated every few seconds.` : "";
}

async function load() {
  try {
    const response = await fetch(`/api/v1/compare?${query}`, { headers: { Accept: "application/json" } });
    const body = await response.json();
    if (!response.ok) throw new Error(Object.values(body.errors || {}).flat().join(" ") || body.error?.message);
    $("load-error").hidden = true;
    if (body.runs.length >= 2) show(body);
    if (!body.finished) setTimeout(load, POLL_MS);
  } catch (error) {
    $("load-error").textContent = `Could not load the comparison: ${error.message}. Retrying…`;
    $("load-error").hidden = false;
    setTimeout(load, POLL_MS * 2);
  }
}

load();
