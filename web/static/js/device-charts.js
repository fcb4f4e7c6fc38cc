// Device telemetry over time (uPlot): a device's utilization and memory, and its host's CPU and
// RAM, all as percentages on one 0–100 axis so the four lines share one small chart.
// Fed with the recorded series (GET …/hardware/history, /api/v1/cluster/history) and then with
// live `gpu` samples, which are appended until the next recorded series replaces them.
import uPlot from "uplot";
import { cssColor } from "./charts.js";
import { el } from "./util.js";

const pct = (used, total) => (total && used !== null && used !== undefined ? Math.round((1000 * used) / total) / 10 : null);
const shown = (v) => (v === null || v === undefined ? "—" : `${Number(v).toFixed(0)} %`);

function colours() {
  const names = ["train", "val", "acc", "lr", "axis", "grid"];
  return Object.fromEntries(names.map((n) => [n, cssColor(`--chart-${n}`)]));
}

/** Tick labels as local clock times: hh:mm, with seconds when the ticks are under a minute apart
 * (uPlot's own two-line dates overlap in a narrow card). */
function clock(u, splits, axisIdx, space, incr) {
  const fmt = { hour: "2-digit", minute: "2-digit", hour12: false, ...(incr < 60 ? { second: "2-digit" } : {}) };
  return splits.map((t) => new Date(t * 1000).toLocaleTimeString([], fmt));
}

function options(c, width, height, withHost) {
  const axis = { stroke: c.axis, grid: { stroke: c.grid, width: 1 }, ticks: { stroke: c.grid, width: 1 } };
  const series = [
    {},
    { label: "Utilization", stroke: c.train, width: 2, value: (u, v) => shown(v) },
    { label: "Memory", stroke: c.val, width: 2, dash: [6, 3], value: (u, v) => shown(v) },
  ];
  if (withHost) {
    series.push(
      { label: "Host CPU", stroke: c.acc, width: 1.5, value: (u, v) => shown(v) },
      { label: "Host RAM", stroke: c.lr, width: 1.5, dash: [2, 3], value: (u, v) => shown(v) },
    );
  }
  return {
    width,
    height,
    scales: { x: { time: true }, y: { range: [0, 100] } },
    series,
    axes: [{ ...axis, space: (u, i, min, max) => (max - min < 600 ? 80 : 60), values: clock }, { ...axis, size: 58, values: (u, splits) => splits.map((v) => `${v} %`) }],
    cursor: { drag: { x: false, y: false } },
    legend: { live: false },  // a key only: the figure's label carries the numbers
  };
}

/**
 * One device's chart in a <figure>: `title` above, a note instead of an empty chart.
 * `span` (seconds) keeps only the newest stretch (the cluster's last hour).
 */
export class DeviceChart {
  constructor({ title, withHost = true, span = null, height = 160, empty = "No device telemetry recorded." }) {
    this.withHost = withHost;
    this.span = span;
    this.height = height;
    this.plot = null;
    this.data = { t: [], util: [], mem: [], cpu: [], ram: [] };
    this.box = el("div", { class: "hw-chart-plot", role: "img" });
    this.note = el("p", { class: "muted hw-chart-none" }, empty);
    this.figure = el("figure", { class: "hw-chart", dataset: { points: "0" } },
      title ? el("figcaption", {}, title) : null, this.note, this.box);
    this.box.hidden = true;
    this.pending = false;
    new ResizeObserver(() => this.plot?.setSize({ width: this.width(), height: this.height })).observe(this.figure);
    document.addEventListener("themechange", () => this.build());
  }

  width() {
    return Math.max(200, Math.floor(this.figure.clientWidth));
  }

  /** Replace everything with a recorded series (live points newer than its last row stay). */
  set(series) {
    const last = series.t.length ? series.t[series.t.length - 1] : -Infinity;
    const keep = this.data.t.map((t, i) => i).filter((i) => this.data.t[i] > last);
    const next = {
      t: [...series.t],
      util: [...series.utilization],
      mem: series.memory_used.map((m) => pct(m, series.memory_total)),
      cpu: [...series.host_cpu],
      ram: series.host_memory_used.map((m) => pct(m, series.host_memory_total)),
    };
    for (const i of keep) for (const k of Object.keys(next)) next[k].push(this.data[k][i]);
    this.data = next;
    this.draw();
  }

  /** Append one live sample (a `gpu` event's device view, which carries `t`). */
  add(s) {
    const t = s.t ?? Date.now() / 1000;
    if (this.data.t.length && t <= this.data.t[this.data.t.length - 1]) return;
    this.data.t.push(t);
    this.data.util.push(s.utilization ?? null);
    this.data.mem.push(pct(s.memory_used, s.memory_total));
    this.data.cpu.push(s.host_cpu ?? null);
    this.data.ram.push(pct(s.host_memory_used, s.host_memory_total));
    this.draw();
  }

  columns() {
    if (this.span !== null && this.data.t.length) {
      const from = this.data.t[this.data.t.length - 1] - this.span;
      const first = this.data.t.findIndex((t) => t >= from);
      if (first > 0) for (const k of Object.keys(this.data)) this.data[k].splice(0, first);
    }
    const d = this.data;
    return this.withHost ? [d.t, d.util, d.mem, d.cpu, d.ram] : [d.t, d.util, d.mem];
  }

  build() {
    this.plot?.destroy();
    this.plot = null;
    if (!this.data.t.length) return;
    this.plot = new uPlot(options(colours(), this.width(), this.height, this.withHost), this.columns(), this.box);
  }

  /** Redraw once per animation frame however many samples arrived. */
  draw() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      const n = this.data.t.length;
      this.note.hidden = n > 0;
      this.box.hidden = n === 0;
      this.figure.dataset.points = String(n);
      this.box.setAttribute("aria-label", this.summary());
      if (!n) return;
      if (!this.plot) this.build();
      else this.plot.setData(this.columns());
    });
  }

  /** What the chart shows, in words (its canvas says nothing to a screen reader). */
  summary() {
    const d = this.data;
    const peak = (xs) => Math.max(...xs.filter((x) => x !== null && x !== undefined), 0);
    const last = d.t.length - 1;
    if (last < 0) return "No telemetry";
    return `Utilization now ${shown(d.util[last])}, peak ${shown(peak(d.util))}; memory now ${shown(d.mem[last])}, peak ${shown(peak(d.mem))}`;
  }
}
