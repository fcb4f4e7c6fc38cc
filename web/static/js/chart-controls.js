// Chart controls: log scale, smoothing, x axis, reset zoom and one checkbox per series.
// Real form controls (labels, keyboard), shared by any number of liveCharts (charts.js).
import { smoothingWeight } from "../lib/smooth.js";
import { el } from "./util.js";

let count = 0;

// The stylesheet travels with the controls: every page with charts gets it, no template edit.
function ensureStylesheet() {
  if (document.querySelector("link[data-chart-controls]")) return;
  const current = document.querySelector('link[href*="/static/css/app.css"]');
  const version = current ? new URL(current.href).search : "";
  document.head.append(el("link", {
    rel: "stylesheet", href: `/static/css/chart-controls.css${version}`, dataset: { chartControls: "" },
  }));
}

export const X_LABELS = { epoch: "Epoch", iteration: "Iteration", time: "Wall time" };

/**
 * A controls bar inserted before `anchor`. `xModes` are the x axes the charts' data offers
 * ("epoch", "iteration", "time"); the select is shown only when there is a choice, and
 * setXModes() changes the offer when live data brings another. Charts attach themselves
 * (liveChart does) and get setView(view) on every change. `initial` starts the view elsewhere
 * ({ log, smooth, x, hidden }: a shared link's); `onChange(view)` hears every change the user makes.
 */
export function chartControls(anchor, {
  xModes = ["epoch"], label = "Chart controls", initial = {}, onChange = () => {},
} = {}) {
  ensureStylesheet();
  const n = ++count;
  const charts = [];
  const view = {
    log: Boolean(initial.log), smooth: smoothingWeight(initial.smooth), x: initial.x || xModes[0],
    hidden: new Set(initial.hidden || []),
  };
  const id = (name) => `cc${n}-${name}`;

  const log = el("input", { type: "checkbox", id: id("log"), class: "cc-log" });
  const smooth = el("input", {
    type: "range", id: id("smooth"), class: "cc-smooth", min: "0", max: "0.99", step: "0.01", value: "0",
    "aria-describedby": id("smooth-out"),
  });
  const smoothOut = el("output", { id: id("smooth-out"), for: id("smooth") }, "off");
  const xSelect = el("select", { id: id("x"), class: "cc-x" });
  const xItem = el("span", { class: "cc-item" }, el("label", { for: id("x") }, "X axis"), xSelect);
  const reset = el("button", { type: "button", class: "btn btn-small cc-reset" }, "Reset zoom");
  const seriesBox = el("fieldset", { class: "cc-series" }, el("legend", {}, "Series"));

  const bar = el("fieldset", { class: "chart-controls", dataset: { controls: String(n) } },
    el("legend", { class: "cc-title" }, label),
    el("label", { class: "cc-item", for: id("log") }, log, " Log scale (y)"),
    el("span", { class: "cc-item" }, el("label", { for: id("smooth") }, "Smoothing"), smooth, smoothOut),
    xItem,
    reset,
    seriesBox,
  );
  bar.append(el("p", { class: "cc-hint muted" }, "Drag across a chart to zoom in; double-click or Reset zoom to go back."));
  anchor.before(bar);

  const apply = () => {
    charts.forEach((c) => c.setView(view));
    onChange(view);
  };

  /** Offer these x axes; the current one falls back to the first when it is no longer offered. */
  function setXModes(modes) {
    const have = [...xSelect.options].map((o) => o.value);
    if (have.length === modes.length && have.every((m, i) => m === modes[i])) return;
    xSelect.replaceChildren(...modes.map((m) => el("option", { value: m }, X_LABELS[m] || m)));
    xItem.hidden = modes.length < 2;
    const fallback = !modes.includes(view.x);
    if (fallback) view.x = modes[0];
    xSelect.value = view.x;
    if (fallback && charts.length) apply();
  }
  setXModes(xModes);
  log.checked = view.log;
  const showSmoothing = () => { smoothOut.textContent = view.smooth > 0 ? view.smooth.toFixed(2) : "off"; };
  smooth.value = String(view.smooth);
  showSmoothing();
  log.addEventListener("change", () => { view.log = log.checked; apply(); });
  smooth.addEventListener("input", () => {
    view.smooth = smoothingWeight(smooth.value);
    showSmoothing();
    apply();
  });
  xSelect.addEventListener("change", () => { view.x = xSelect.value; apply(); });
  reset.addEventListener("click", () => charts.forEach((c) => c.resetZoom()));

  /** One checkbox per series label (the first chart's), with a key drawn like its line (colour,
   *  dashes): the charts' legends may be a screen away on a phone. Toggles it in every chart. */
  let shownKeys = "";
  function showSeries(labels, keys = []) {
    const have = [...seriesBox.querySelectorAll("input")].map((i) => i.dataset.label);
    const keyText = JSON.stringify(keys);
    if (have.length === labels.length && have.every((l, i) => l === labels[i]) && keyText === shownKeys) return;
    shownKeys = keyText;
    seriesBox.replaceChildren(el("legend", {}, "Series"), ...labels.map((text, i) => {
      const box = el("input", { type: "checkbox", id: id(`s${i}`), dataset: { label: text } });
      box.checked = !view.hidden.has(text);
      box.addEventListener("change", () => {
        if (box.checked) view.hidden.delete(text);
        else view.hidden.add(text);
        charts.forEach((c) => c.showSeries(text, box.checked));
        onChange(view);
      });
      const key = keys[i] && el("span", {
        class: keys[i].dashed ? "cc-key cc-key-dashed" : "cc-key", "aria-hidden": "true",
        style: `border-top-color: ${keys[i].color}`,
      });
      return el("label", { class: "cc-item", for: id(`s${i}`) }, box, key, ` ${text}`);
    }));
  }

  /** A legend click in a chart toggled a series: keep the checkbox (and the other charts) in step. */
  function seriesToggled(text, shown) {
    if (shown) view.hidden.delete(text);
    else view.hidden.add(text);
    for (const box of seriesBox.querySelectorAll("input")) if (box.dataset.label === text) box.checked = shown;
    charts.forEach((c) => c.showSeries(text, shown));
    onChange(view);
  }

  return {
    element: bar,
    view,
    attach(chart) {
      charts.push(chart);
      if (charts.length === 1) showSeries(chart.labels(), chart.keys?.());
    },
    refreshSeries() {
      if (charts.length) showSeries(charts[0].labels(), charts[0].keys?.());
    },
    seriesToggled,
    setXModes,
  };
}
