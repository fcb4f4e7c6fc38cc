// A tiny inline SVG line of a series (the home page's train loss per model).
import { fmtNumber } from "./util.js";

const SVG = "http://www.w3.org/2000/svg";

/** An <svg> sparkline of `values` (≥ 2 finite numbers), or null. */
export function sparkline(values, { width = 96, height = 24, label = "Train loss" } = {}) {
  const ys = (values || []).filter(Number.isFinite);
  if (ys.length < 2) return null;
  const lo = Math.min(...ys), hi = Math.max(...ys);
  const span = hi - lo || 1;
  const d = ys.map((y, i) => {
    const px = (i / (ys.length - 1)) * (width - 2) + 1;
    const py = height - 2 - ((y - lo) / span) * (height - 4);
    return `${i ? "L" : "M"}${px.toFixed(1)},${py.toFixed(1)}`;
  }).join(" ");
  const svg = document.createElementNS(SVG, "svg");
  for (const [k, v] of Object.entries({ width, height, viewBox: `0 0 ${width} ${height}`, class: "sparkline",
    role: "img", "aria-label": `${label} from ${fmtNumber(ys[0])} to ${fmtNumber(ys[ys.length - 1])}` })) {
    svg.setAttribute(k, v);
  }
  const path = document.createElementNS(SVG, "path");
  path.setAttribute("d", d);
  svg.append(path);
  return svg;
}
