// uPlot charts that take their colours from CSS variables, follow the theme and their container.
import uPlot from "uplot";
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
const epochValue = (u, v) => (v == null ? "—" : fmtEpoch(v));

/** Train loss + val loss (left axis), val accuracy % (right axis) over epochs. */
export function combinedOptions(c, width) {
  return {
    width,
    height: 300,
    scales: { x: { time: false }, loss: { auto: true }, acc: { range: [0, 100] } },
    series: [
      { label: "Epoch", value: epochValue },
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
      axis(c, { label: "Epoch", values: (u, splits) => splits.map(fmtEpoch) }),
      axis(c, { scale: "loss", label: "Loss", values: (u, splits) => splits.map(fmtNumber) }),
      axis(c, { scale: "acc", side: 1, label: "Accuracy (%)", grid: { show: false } }),
    ],
    cursor: { drag: { x: true, y: false } },
    legend: { live: false },  // the key numbers beside the chart carry the values
  };
}

/** Learning rate over epochs. */
export function lrOptions(c, width) {
  return {
    width,
    height: 180,
    scales: { x: { time: false }, y: { range: (u, min, max) => [0, max > 0 ? max * 1.1 : 1] } },
    series: [
      { label: "Epoch", value: epochValue },
      { label: "Learning rate", stroke: c.lr, width: 2, spanGaps: true, value: legendValue },
    ],
    axes: [
      axis(c, { label: "Epoch", values: (u, splits) => splits.map(fmtEpoch) }),
      axis(c, { label: "Learning rate", size: 70, values: (u, splits) => splits.map(fmtNumber) }),
    ],
    cursor: { drag: { x: true, y: false } },
    legend: { live: false },
  };
}

/**
 * A chart in `container`, built by makeOptions(colours, width). It is rebuilt when the theme
 * changes (canvas colours are baked in) and resized with its container. set(data) draws at once:
 * callers coalesce to one call per animation frame.
 */
export function liveChart(container, makeOptions, data) {
  let current = data;
  let width = 0;
  let chart = null;

  function build() {
    chart?.destroy();
    width = Math.max(200, Math.floor(container.clientWidth));
    chart = new uPlot(makeOptions(palette(), width), current, container);
  }

  build();
  new ResizeObserver(() => {
    const next = Math.max(200, Math.floor(container.clientWidth));
    if (next !== width) {
      width = next;
      chart.setSize({ width, height: chart.height });
    }
  }).observe(container);
  document.addEventListener("themechange", build);

  return {
    set(next) {
      current = next;
      chart.setData(current);
    },
  };
}
