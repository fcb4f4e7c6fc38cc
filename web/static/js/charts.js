// uPlot charts that take their colours from CSS variables, follow the theme and their container.
import uPlot from "uplot";
import { chartControls, X_LABELS } from "./chart-controls.js";
import { ema } from "../lib/smooth.js";
import { fmtEpoch, fmtNumber } from "./util.js";

/** Resolve a CSS colour variable (light-dark() included) to an rgb() string canvas understands. */
export function cssColor(name) {
  const probe = document.createElement("span");
  probe.style.color = `var(${name})`;
  probe.style.display = "none";
  document.body.append(probe);
  const color = getComputedStyle(probe).color;
  probe.remove();
  return color;
}

function palette() {
  const names = ["train", "val", "acc", "lr", "axis", "grid"];
  return Object.fromEntries(names.map((n) => [n, cssColor(`--chart-${n}`)]));
}

function axis(c, extra = {}) {
  return {
    stroke: c.axis,
    grid: { stroke: c.grid, width: 1 },
    ticks: { stroke: c.grid, width: 1 },
    ...extra,
  };
}

const legendValue = (u, v) => (v == null ? "—" : fmtNumber(v));

const DURATION_UNITS = [[7200, 3600, "h"], [120, 60, "min"], [0, 1, "s"]];  // [from, seconds, name]
const inUnit = (s, [, size, name]) => `${Number((s / size).toPrecision(3))} ${name}`;

/** Seconds as a short label: 45 s, 12 min, 1.5 h. */
export function shortDuration(s) {
  return inUnit(s, DURATION_UNITS.find(([from]) => Math.abs(s) >= from) || DURATION_UNITS[2]);
}

/** Wall-time ticks in one unit, picked by the largest ("0 min, 2 min, 4 min", never "60 s, 2 min"). */
function durationTicks(splits) {
  const top = Math.max(...splits.map(Math.abs));
  const unit = DURATION_UNITS.find(([from]) => top >= from) || DURATION_UNITS[2];
  return splits.map((s) => inUnit(s, unit));
}

/** How an x value reads on the axis the controls picked (wall time: seconds from the start). */
export const xText = (mode) => (mode === "time" ? shortDuration : mode === "iteration" ? String : fmtEpoch);

// Wall-time ticks at round seconds, minutes and hours (uPlot's 1-2-5 steps give "6.67 min").
const TIME_INCRS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600,
  43200, 86400, 172800, 432000];

/** The x series and x axis for an x mode ("epoch", "iteration" or "time"). */
export function xSeries(mode) {
  const text = xText(mode);
  return { label: X_LABELS[mode] || "Epoch", value: (u, v) => (v == null ? "—" : text(v)) };
}

export function xAxis(c, mode) {
  const text = xText(mode);
  return axis(c, {
    label: X_LABELS[mode] || "Epoch",
    // px between ticks: on a wide chart whole and half epochs rather than 1.25, 1.5, 1.75…;
    // on a phone's narrow one still a few ticks.
    space: (u, i, min, max, dim) => Math.min(70, Math.max(40, dim / 8)),
    ...(mode === "time"
      ? { incrs: TIME_INCRS, values: (u, splits) => durationTicks(splits) }
      : { values: (u, splits) => splits.map(text) }),
  });
}

/** Train loss + val loss (left axis), val accuracy % (right axis) over the view's x. */
export function combinedOptions(c, width, view = { x: "epoch" }) {
  return {
    width,
    height: 300,
    scales: { x: { time: false }, loss: { auto: true }, acc: { range: [0, 100] } },
    series: [
      xSeries(view.x),
      { label: "Train loss", scale: "loss", stroke: c.train, width: 1.5, spanGaps: true, value: legendValue },
      {
        label: "Val loss", scale: "loss", stroke: c.val, width: 2, dash: [8, 4], spanGaps: true,
        value: legendValue, points: { show: true, size: 6, fill: c.val },
      },
      {
        label: "Val accuracy (%)", scale: "acc", stroke: c.acc, width: 2.5, spanGaps: true,
        value: legendValue, points: { show: true, size: 6, fill: c.acc },
      },
    ],
    axes: [
      xAxis(c, view.x),
      axis(c, { scale: "loss", label: "Loss", values: (u, splits) => splits.map(fmtNumber) }),
      axis(c, { scale: "acc", side: 1, label: "Accuracy (%)", grid: { show: false } }),
    ],
    cursor: { drag: { x: true, y: false } },
    legend: { live: false },  // the key numbers beside the chart carry the values
  };
}

/** Learning rate over the view's x. */
export function lrOptions(c, width, view = { x: "epoch" }) {
  return {
    width,
    height: 180,
    scales: { x: { time: false }, y: { range: (u, min, max) => [0, max > 0 ? max * 1.1 : 1] } },
    series: [
      xSeries(view.x),
      { label: "Learning rate", stroke: c.lr, width: 2, spanGaps: true, value: legendValue, smooth: false },
    ],
    axes: [
      xAxis(c, view.x),
      axis(c, { label: "Learning rate", size: 70, values: (u, splits) => splits.map(fmtNumber) }),
    ],
    cursor: { drag: { x: true, y: false } },
    legend: { live: false },
  };
}

const faint = (color) => (typeof color === "string" && color.startsWith("rgb(")
  ? color.replace("rgb(", "rgba(").replace(")", ", 0.3)") : color);

// A scale with a fixed range (accuracy 0..100 %) stays linear; the others may go log.
const logScales = (opts) => Object.keys(opts.scales || {})
  .filter((k) => k !== "x" && !Array.isArray(opts.scales[k].range));

/**
 * Options and data as the view asks: log y scales (values ≤ 0 dropped there), smoothed series
 * with the raw ones drawn faint behind (appended; `rawOf` maps them back), hidden series.
 * A series marked `smooth: false` is never smoothed: a learning rate steps, and an average
 * would draw a gradual decay that never happened.
 */
function applyView(opts, data, view) {
  const scales = { ...opts.scales };
  const logged = view.log ? logScales(opts) : [];
  for (const k of logged) scales[k] = { ...scales[k], distr: 3, range: undefined, auto: true };
  const onLog = (s) => logged.includes(s.scale || "y");
  const positive = (col) => col.map((v) => (v > 0 ? v : null));
  const series = opts.series.map((s, i) => ({ ...s, show: i === 0 || !view.hidden.has(s.label) }));
  const cols = data.map((col, i) => (i > 0 && onLog(series[i]) ? positive(col) : col));
  if (!(view.smooth > 0)) return { opts: { ...opts, scales, series }, data: cols };
  const smoothable = series.map((s, i) => i > 0 && s.smooth !== false);
  const raws = series.filter((s, i) => smoothable[i]).map((s) => ({
    ...s, label: `${s.label} (raw)`, stroke: faint(s.stroke), width: 1, dash: undefined,
    points: { show: false }, rawOf: s.label,
  }));
  if (!raws.length) return { opts: { ...opts, scales, series }, data: cols };
  const smoothed = cols.map((col, i) => (smoothable[i] ? ema(col, view.smooth) : col));
  return {
    opts: { ...opts, scales, series: [...series, ...raws] },
    data: [...smoothed, ...cols.filter((col, i) => smoothable[i])],
  };
}

const sharedControls = new WeakMap();

/**
 * A chart in `container`, built by makeOptions(colours, width, view). It is rebuilt when the
 * theme changes (canvas colours are baked in) or the view does, and resized with its container.
 * `data` is uPlot's aligned data, or a function view → data (when it offers several x axes).
 * `options.controls`: a chartControls() to join; left out, the charts of one section share a
 * bar placed before the first one's figure; false: none. set(data) draws at once: callers coalesce to one call per frame.
 */
export function liveChart(container, makeOptions, data, options = {}) {
  let source = data;
  let width = 0;
  let chart = null;
  let view = { log: false, smooth: 0, x: "epoch", hidden: new Set() };
  let controls = options.controls;
  if (controls === undefined) {  // one bar per section: the model page's two charts share it
    const section = container.closest("section") || container.parentElement;
    controls = sharedControls.get(section);
    if (!controls) {
      controls = chartControls(container.closest("figure") || container, { xModes: options.xModes || ["epoch"] });
      sharedControls.set(section, controls);
    }
  }
  const current = () => (typeof source === "function" ? source(view) : source);

  let zoomed = false;
  let base = null;  // makeOptions' answer for the chart as built (colours read once per build)

  function build() {
    chart?.destroy();
    width = Math.max(200, Math.floor(container.clientWidth));
    base = makeOptions(palette(), width, view);
    const made = applyView(base, current(), view);
    zoomed = false;
    made.opts.hooks = {
      ...made.opts.hooks,
      // A drag zoom holds while data keeps arriving; Reset zoom or a double-click ends it.
      setScale: [...(made.opts.hooks?.setScale || []), (u, key) => {
        if (key !== "x") return;
        const xs = u.data[0];
        zoomed = xs.length > 1 && (u.scales.x.min > xs[0] || u.scales.x.max < xs[xs.length - 1]);
      }],
      setSeries: [...(made.opts.hooks?.setSeries || []), (u, i) => {
        if (i == null || i < 1 || building) return;
        const s = u.series[i];
        controls?.seriesToggled?.(s.rawOf || s.label, s.show);
      }],
    };
    building = true;
    chart = new uPlot(made.opts, made.data, container);
    building = false;
    // The faint raw copies stay out of the legend: one row (and one toggle) per series.
    const rows = chart.root.querySelectorAll(".u-legend .u-series");
    const skip = chart.series.length - rows.length;  // uPlot leaves the x row out when not live
    chart.series.forEach((s, i) => { if (s.rawOf && rows[i - skip]) rows[i - skip].style.display = "none"; });
    controls?.refreshSeries?.();  // a theme change redraws with new colours: the keys follow
  }
  let building = false;

  const handle = {
    set(next) {
      source = next;
      if (!chart) return;
      const data = current();
      if (data.length !== base.series.length) build();  // series came or went: new options
      else chart.setData(applyView(base, data, view).data, !zoomed);
    },
    setView(next) {
      view = next;
      build();
    },
    resetZoom() {
      const xs = chart.data[0];
      if (xs.length) chart.setScale("x", { min: xs[0], max: xs[xs.length - 1] });
    },
    /** Series labels (the raw copies of smoothed ones left out). */
    labels() {
      return chart.series.slice(1).filter((s) => !s.rawOf).map((s) => s.label);
    },
    /** How each of labels() is drawn: { color, dashed }, for the controls' keys. */
    keys() {
      return chart.series.map((s, i) => [s, i]).slice(1).filter(([s]) => !s.rawOf).map(([s, i]) => ({
        color: typeof s.stroke === "function" ? s.stroke(chart, i) : s.stroke,
        dashed: Boolean(s.dash?.length),
      }));
    },
    showSeries(label, shown) {
      chart.series.forEach((s, i) => {
        if (i > 0 && (s.label === label || s.rawOf === label) && s.show !== shown) {
          building = true;
          chart.setSeries(i, { show: shown });
          building = false;
        }
      });
    },
    get uplot() {
      return chart;
    },
  };
  if (controls) view = controls.view;
  build();
  controls?.attach(handle);
  container.uplotChart = handle;  // tests read series and paths through it
  new ResizeObserver(() => {
    const next = Math.max(200, Math.floor(container.clientWidth));
    if (next !== width) {
      width = next;
      chart.setSize({ width, height: chart.height });
    }
  }).observe(container);
  document.addEventListener("themechange", build);
  return handle;
}
