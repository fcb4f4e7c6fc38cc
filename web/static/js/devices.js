// Device telemetry rendering shared by the cluster page and the model page's hardware panel.
import { el } from "./util.js";

const MIB = 1 << 20;

/** "1.2 GiB / 16.0 GiB" from bytes (MiB below one GiB). */
export function fmtMemory(used, total) {
  const f = (b) => (b >= 1024 * MIB ? `${(b / (1024 * MIB)).toFixed(1)} GiB` : `${Math.round(b / MIB)} MiB`);
  if (!total) return used ? f(used) : "—";
  return `${f(used || 0)} / ${f(total)}`;
}

const fmt = (x, unit, digits = 0) => (x === null || x === undefined ? "—" : `${Number(x).toFixed(digits)} ${unit}`);

/** A labelled bar: value 0..1 with its text; `null` shows an empty bar. */
function meter(label, fraction, text) {
  const pct = fraction === null || !Number.isFinite(fraction) ? 0 : Math.max(0, Math.min(1, fraction)) * 100;
  return el("div", { class: "meter" },
    el("span", { class: "meter-label" }, label),
    el("span", { class: "bar", role: "img", "aria-label": `${label}: ${text}` },
      el("span", { class: "bar-fill", style: `width:${pct.toFixed(1)}%` })),
    el("span", { class: "meter-value" }, text),
  );
}

/** The live numbers of one device sample (or a note when none arrived yet). A CPU slot
 * (`kind` "cpu") has no processes, temperature or power of its own, and its memory and
 * utilization are the whole machine's: it says so instead of showing "none" and dashes. */
export function sampleBlock(sample, kind = "gpu") {
  if (!sample) return el("p", { class: "muted sample-none" }, "No telemetry yet.");
  const memFrac = sample.memory_total ? sample.memory_used / sample.memory_total : null;
  const util = sample.utilization;
  const meters = [
    meter("Memory", memFrac, fmtMemory(sample.memory_used, sample.memory_total)),
    meter("Utilization", util === null || util === undefined ? null : util / 100, fmt(util, "%")),
  ];
  if (kind === "cpu") {
    return el("div", { class: "sample" }, ...meters,
      el("p", { class: "muted sample-note" }, "The whole machine's figures, shared by its CPU slots."));
  }
  const procs = sample.processes || [];
  return el("div", { class: "sample" }, ...meters,
    el("dl", { class: "facts sample-facts" },
      el("dt", {}, "Temperature"), el("dd", {}, fmt(sample.temperature, "°C")),
      el("dt", {}, "Power"), el("dd", {}, fmt(sample.power_watts, "W", 1)),
      el("dt", {}, "Processes"),
      el("dd", {}, procs.length
        ? procs.map((p) => `${p.pid} (${fmtMemory(p.memory, 0)})`).join(", ")
        : "none"),
    ),
  );
}

/** "GPU" / "CPU slot", plural when needed. */
export function deviceWord(kind, n) {
  const word = kind === "cpu" ? "CPU slot" : "GPU";
  return n === 1 ? word : `${word}s`;
}
