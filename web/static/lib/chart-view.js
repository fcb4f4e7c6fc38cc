// A chart view kept in the URL (?x=&smooth=&log=1&hide=id,id), beside the page's own query
// (the comparison's ids= or group=). Pure: the page passes location.search in and out.
import { smoothingWeight } from "./smooth.js";

export const X_MODES = ["epoch", "iteration", "time"];
const VIEW_PARAMS = ["x", "smooth", "log", "hide"];

/** The view a query asks for; unknown or bad values are left out (the defaults stand). */
export function readChartView(search) {
  const params = new URLSearchParams(search);
  const view = { hidden: [] };
  if (X_MODES.includes(params.get("x"))) view.x = params.get("x");
  const smooth = smoothingWeight(params.get("smooth"));
  if (smooth > 0) view.smooth = smooth;
  if (params.get("log") === "1") view.log = true;
  view.hidden = (params.get("hide") || "").split(",").map((s) => s.trim()).filter(Boolean);
  return view;
}

/** `search` with the view's parameters replaced (defaults left out); the rest kept in order. */
export function writeChartView(search, { x, smooth, log, hidden = [] }) {
  const params = new URLSearchParams(search);
  for (const name of VIEW_PARAMS) params.delete(name);
  if (x && x !== "epoch") params.set("x", x);
  if (smooth > 0) params.set("smooth", String(smooth));
  if (log) params.set("log", "1");
  if (hidden.length) params.set("hide", hidden.join(","));
  // ids=a,b reads better than ids=a%2Cb, and URLSearchParams turns both back into the same.
  const text = params.toString().replaceAll("%2C", ",");
  return text ? `?${text}` : "";
}
