// Sweep view: parallel coordinates in SVG, one vertical axis per numeric setting that differs
// plus best validation accuracy, one line per run; the best run drawn last and highlighted.
// Drawn at the card's width in CSS pixels (text stays full size, labels wrap to fit between the
// axes); only when the axes would crowd closer than MIN_GAP does it scroll inside its card.
import { fmtNumber } from "./util.js";

const NS = "http://www.w3.org/2000/svg";
const svg = (tag, attrs = {}, ...children) => {
  const node = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  node.append(...children);
  return node;
};

const MIN_GAP = 110;  // px between axes: room for a wrapped label of ~100 px
const MAX_GAP = 360;  // px: on a wide card the plot stays compact, centred
const MAX_LABEL = 200;  // px: wider labels wrap
const LINE = 17;  // label line height, px
const PLOT = 190;  // the axes' height, px

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

/** Words of `text` in lines no wider than `max` px (as the label font draws them). */
function wrap(text, max, font) {
  const ctx = document.createElement("canvas").getContext("2d");
  ctx.font = font;
  const lines = [];
  for (const word of text.split(" ")) {
    const last = lines.length - 1;
    if (last >= 0 && ctx.measureText(`${lines[last]} ${word}`).width <= max) lines[last] += ` ${word}`;
    else lines.push(word);
  }
  return lines;
}

/** Distance between axes and label width for `n` axes across `width` px (side margin = half a label). */
function layout(n, available) {
  let gap = available / n;  // labels of gap - 12 px: the margins add up to one gap
  if (gap - 12 > MAX_LABEL) gap = (available - MAX_LABEL - 12) / (n - 1);
  gap = Math.min(MAX_GAP, Math.max(MIN_GAP, gap));
  const label = Math.min(MAX_LABEL, gap - 12);
  const side = label / 2 + 6;
  return { gap, label, side, width: Math.ceil(2 * side + (n - 1) * gap) };
}

const shown = new WeakMap();  // host → the last view drawn there (redrawn when the card resizes)
const watched = new WeakSet();

/**
 * Draw into `host` when the runs differ in at least one numeric setting; returns whether it did.
 * `view` is /api/v1/compare's answer (runs best first; settings.differ values in that order).
 */
export function sweepPlot(host, view) {
  const numeric = view.settings.differ.filter((row) => row.numeric);
  if (!numeric.length || view.runs.length < 2) {
    host.replaceChildren();
    shown.delete(host);
    return false;
  }
  shown.set(host, view);
  if (!watched.has(host)) {
    watched.add(host);
    let drawnAt = host.clientWidth;
    new ResizeObserver(() => {
      if (host.clientWidth === drawnAt || !shown.has(host)) return;
      drawnAt = host.clientWidth;
      draw(host, shown.get(host));
    }).observe(host);
  }
  draw(host, view);
  return true;
}

function draw(host, view) {
  const numeric = view.settings.differ.filter((row) => row.numeric);
  const axes = [
    ...numeric.map((row) => ({ label: row.label, values: row.values.map((v) => (v === null ? NaN : v)) })),
    { label: "Best val accuracy (%)", values: view.runs.map((r) => (r.summary.best_val_accuracy ?? NaN) * 100) },
  ];
  const scales = axes.map((a) => axisScale(a.values));
  const available = Math.floor(host.clientWidth) || 600;
  const { gap, label, side, width } = layout(axes.length, available);
  const font = `600 14px ${getComputedStyle(host).fontFamily}`;  // .sweep-label's
  const labels = axes.map((a, i) => wrap(a.label + (scales[i].log ? " (log)" : ""), label, font));
  const top = 12 + LINE * Math.max(...labels.map((l) => l.length)) + 18, bottom = 28;
  const height = top + PLOT + bottom;
  const x = (i) => side + i * gap;
  const y = (t) => top + (1 - t) * PLOT;
  const plot = svg("svg", {
    width, height, viewBox: `0 0 ${width} ${height}`, class: "sweep-svg", role: "img",
    "aria-label": `Parallel coordinates: ${axes.map((a) => a.label).join(", ")}; the runs table lists the same numbers`,
  });
  axes.forEach((a, i) => {
    const s = scales[i];
    // Spaces stay in the lines so the text reads whole ("Base learning rate") to tests and AT.
    const lines = labels[i].map((line, k) => svg("tspan", { x: x(i), dy: k ? LINE : 0 },
      k < labels[i].length - 1 ? `${line} ` : line));
    plot.append(
      svg("line", { x1: x(i), x2: x(i), y1: y(0), y2: y(1), class: "sweep-axis" }),
      svg("text", { x: x(i), y: 16, class: "sweep-label", "text-anchor": "middle" }, ...lines),
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
  if (width > available) {  // too many axes for the card: it scrolls, so keyboards must reach it
    Object.assign(scroller, { tabIndex: 0 });
    scroller.setAttribute("role", "group");
    scroller.setAttribute("aria-label", "Parallel coordinates (scrolls sideways)");
  }
  scroller.append(plot);
  host.replaceChildren(scroller, legend);
}
