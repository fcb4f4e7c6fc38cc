// Sweep view: parallel coordinates in SVG, one vertical axis per numeric setting that differs
// plus best validation accuracy, one line per run; the best run drawn last and highlighted.
import { fmtNumber } from "./util.js";

const NS = "http://www.w3.org/2000/svg";
const svg = (tag, attrs = {}, ...children) => {
  const node = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  node.append(...children);
  return node;
};

/** value → 0..1 on an axis; log when all values are > 0 and span more than 10×. */
function axisScale(values) {
  const known = values.filter((v) => Number.isFinite(v));
  const lo = Math.min(...known), hi = Math.max(...known);
  const log = lo > 0 && hi / lo > 10;
  const f = log ? Math.log10 : (v) => v;
  const span = f(hi) - f(lo);
  return {
    log, lo, hi,
    at: (v) => (!Number.isFinite(v) ? null : span === 0 ? 0.5 : (f(v) - f(lo)) / span),
  };
}

/**
 * Draw into `host` when the runs differ in at least one numeric setting; returns whether it did.
 * `view` is /api/v1/compare's answer (runs best first; settings.differ values in that order).
 */
export function sweepPlot(host, view) {
  const numeric = view.settings.differ.filter((row) => row.numeric);
  if (!numeric.length || view.runs.length < 2) {
    host.replaceChildren();
    return false;
  }
  const axes = [
    ...numeric.map((row) => ({ label: row.label, values: row.values.map((v) => (v === null ? NaN : v)) })),
    { label: "Best val accuracy (%)", values: view.runs.map((r) => (r.summary.best_val_accuracy ?? NaN) * 100) },
  ];
  const width = Math.max(420, 200 * axes.length), height = 260, top = 40, bottom = 40, side = 70;
  const x = (i) => side + (i * (width - 2 * side)) / Math.max(1, axes.length - 1);
  const y = (t) => top + (1 - t) * (height - top - bottom);
  const plot = svg("svg", {
    viewBox: `0 0 ${width} ${height}`, class: "sweep-svg", role: "img",
    "aria-label": `Parallel coordinates: ${axes.map((a) => a.label).join(", ")}; the runs table lists the same numbers`,
  });
  const scales = axes.map((a) => axisScale(a.values));
  axes.forEach((a, i) => {
    const s = scales[i];
    plot.append(
      svg("line", { x1: x(i), x2: x(i), y1: y(0), y2: y(1), class: "sweep-axis" }),
      // The outer labels hang inwards so they are not cut at the edges.
      svg("text", {
        x: i === 0 ? 4 : i === axes.length - 1 ? width - 4 : x(i), y: 16, class: "sweep-label",
        "text-anchor": i === 0 ? "start" : i === axes.length - 1 ? "end" : "middle",
      }, a.label + (s.log ? " (log)" : "")),
      svg("text", { x: x(i), y: y(1) - 6, class: "sweep-tick", "text-anchor": "middle" }, fmtNumber(s.hi)),
      svg("text", { x: x(i), y: y(0) + 16, class: "sweep-tick", "text-anchor": "middle" }, fmtNumber(s.lo)),
    );
  });
  const lines = view.runs.map((r, k) => {
    const points = axes.map((a, i) => [x(i), scales[i].at(a.values[k])]).filter(([, t]) => t !== null);
    const best = r.id === view.best_run;
    const line = svg("polyline", {
      points: points.map(([px, t]) => `${px},${y(t)}`).join(" "),
      class: best ? "sweep-line sweep-best" : "sweep-line", "data-run-id": r.id,
    }, svg("title", {}, `${r.name}${best ? " (best)" : ""}`));
    const dots = points.map(([px, t]) => svg("circle", {
      cx: px, cy: y(t), r: best ? 4.5 : 3, class: best ? "sweep-dot sweep-best" : "sweep-dot",
    }));
    return { best, nodes: [line, ...dots] };
  });
  for (const l of [...lines.filter((l) => !l.best), ...lines.filter((l) => l.best)]) plot.append(...l.nodes);
  const bestRun = view.runs.find((r) => r.id === view.best_run);
  const legend = document.createElement("p");
  legend.className = "sweep-legend";
  legend.textContent = bestRun ? `Highlighted: ${bestRun.name}, the best run.` : "No run has a validation accuracy yet.";
  const scroller = document.createElement("div");
  scroller.className = "sweep-scroll";
  scroller.append(plot);
  host.replaceChildren(scroller, legend);
  return true;
}
