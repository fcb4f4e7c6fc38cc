// Small shared helpers: DOM building, status badges, number/time formatting.

export const STATUS_ICONS = {
  Initialized: "○", Waiting: "◔", Running: "▶", Done: "✓", Aborted: "■", Error: "✕",
};
export const RUNNING = new Set(["Initialized", "Waiting", "Running"]);

/** Create an element: el("a", {href: "/"}, "text", child). Text is never parsed as HTML. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key === "style") node.style.cssText = value;  // CSSOM: the CSP refuses style attributes
    else node.setAttribute(key, value === true ? "" : value);
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

/** A status badge: icon + text, coloured by a status-* class (never colour alone). */
export function badge(status) {
  const node = el("span", { class: "badge" });
  setBadge(node, status);
  return node;
}

export function setBadge(node, status) {
  const text = status || "Unknown";
  const css = STATUS_ICONS[text] ? text.toLowerCase() : "unknown";
  node.className = `badge status-${css}`;
  node.dataset.status = text;
  node.replaceChildren(
    el("span", { class: "badge-icon", "aria-hidden": "true" }, STATUS_ICONS[text] || "?"),
    " ",
    el("span", { class: "badge-text" }, text),
  );
}

/** Seconds as "1 h 05 min" / "3 min 20 s" / "12 s"; "" when unknown. */
export function fmtDuration(seconds) {
  if (typeof seconds !== "number" || !Number.isFinite(seconds) || seconds < 0) return "";
  const total = Math.round(seconds);
  const h = Math.floor(total / 3600), m = Math.floor((total % 3600) / 60), s = total % 60;
  const pad = (n) => String(n).padStart(2, "0");
  if (h) return `${h} h ${pad(m)} min`;
  if (m) return `${m} min ${pad(s)} s`;
  return `${s} s`;
}

/** An epoch like Python's f"{x:g}" (1, 2.5, 0.333333). */
export function fmtEpoch(x) {
  return Number.isFinite(x) ? String(Number(x.toPrecision(6))) : "—";
}

/** A metric value with 4 significant digits, small ones in exponent form. */
export function fmtNumber(x) {
  if (!Number.isFinite(x)) return "—";
  if (x !== 0 && Math.abs(x) < 1e-3) return x.toExponential(2);
  return String(Number(x.toPrecision(4)));
}

/** An epoch for reading: at most one decimal, integers plain ("9.3", "60"). */
export function fmtEpochTenths(x) {
  return Number.isFinite(x) ? String(Math.round(x * 10) / 10) : "—";
}

const PLAIN = new Intl.NumberFormat("en-US", { maximumSignificantDigits: 4, useGrouping: false });

/** A value in plain notation, 4 significant digits at most ("0.000769", "2.303"), never "7.69e-4". */
export function fmtPlain(x) {
  return Number.isFinite(x) ? PLAIN.format(x) : "—";
}

/** A loss (a cross-entropy, never below 0): float noise around 0 (|x| < 1e-5, e.g. -1.43e-6
 *  from MXNet's float32 log_softmax) reads "≈0"; others as fmtPlain. */
export function fmtLoss(x) {
  if (Number.isFinite(x) && x !== 0 && Math.abs(x) < 1e-5) return "≈0";
  return fmtPlain(x);
}

/** A timestamp (epoch seconds or ms, or ISO text) as a Date, or null. */
export function toDate(value) {
  if (value === null || value === undefined || value === "") return null;
  let date;
  if (typeof value === "number") date = new Date(value > 1e11 ? value : value * 1000);  // ms vs s
  else date = new Date(value);
  return Number.isNaN(date.getTime()) ? null : date;
}

const relFmt = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });

export function relativeTime(date, now = Date.now()) {
  const secs = Math.round((date.getTime() - now) / 1000);
  const abs = Math.abs(secs);
  if (abs < 45) return relFmt.format(0, "second");
  if (abs < 3600) return relFmt.format(Math.round(secs / 60), "minute");
  if (abs < 86400) return relFmt.format(Math.round(secs / 3600), "hour");
  return relFmt.format(Math.round(secs / 86400), "day");
}

/** A <time> element; relative ones show "5 minutes ago" with the local time in the title. */
export function timeEl(date, { relative = false } = {}) {
  const node = el("time", { datetime: date.toISOString() });
  if (relative) node.dataset.relative = "";
  renderTime(node);
  return node;
}

/** Local time: only the clock for today, else a short date and time. */
export function localTime(date, now = new Date()) {
  if (date.toDateString() === now.toDateString()) return date.toLocaleTimeString();
  return date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

function renderTime(node) {
  const date = toDate(node.getAttribute("datetime"));
  if (!date) return;
  node.title = date.toLocaleString(undefined, { dateStyle: "full", timeStyle: "long" });
  node.textContent = "relative" in node.dataset ? relativeTime(date) : localTime(date);
}

/** Re-render every <time datetime> below root (local time, or relative when marked). */
export function hydrateTimes(root = document) {
  for (const node of root.querySelectorAll("time[datetime]")) renderTime(node);
}

/** Error text from a failed fetch Response (DIGITS {"error": {...}}, Litestar {"detail"}, or text). */
export async function responseError(response) {
  const text = await response.text();
  try {
    const data = JSON.parse(text);
    const msg = data?.error?.message || data?.error?.description || data?.detail
      || (typeof data?.error === "string" ? data.error : "");
    if (msg) return String(msg);
  } catch { /* not JSON */ }
  return text.trim().slice(0, 300) || `${response.status} ${response.statusText}`;
}

/** The CSRF header for a state-changing fetch: the `csrftoken` cookie sent back (double submit). */
export function csrfHeaders(headers = {}) {
  const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  return match ? { ...headers, "x-csrftoken": decodeURIComponent(match[1]) } : headers;
}

/** The CSP forbids style attributes: bar sizes come as data-* and are set through the CSSOM. */
export function applySizes(root = document) {
  for (const node of root.querySelectorAll("[data-width]")) node.style.width = `${node.dataset.width}%`;
  for (const node of root.querySelectorAll("[data-height]")) node.style.height = `${node.dataset.height}%`;
  for (const node of root.querySelectorAll("[data-share]")) node.style.setProperty("--share", node.dataset.share);
}
