// Model page: live loss/accuracy and learning-rate charts, key numbers, snapshots, status.
import { chartControls } from "./chart-controls.js";
import { combinedOptions, liveChart, lrOptions } from "./charts.js";
import { forJob, jobPage } from "./job.js";
import { connectLive } from "./live.js";
import { RUNNING, el, fmtEpoch, fmtEpochTenths, fmtLoss, fmtPlain } from "./util.js";

const $ = (id) => document.getElementById(id);
const job = jobPage();

// Every snapshot choice on the page; "Trained models" holds the one that sets all the others.
const PICKER = "snapshot-list";
const SNAPSHOT_SELECTS = [PICKER, "snapshot_epoch", "many_snapshot_epoch", "download_epoch"];
const pickedOnPurpose = new Set();  // selects the user set: a new snapshot does not move them

/** "Make pretrained model" posts its own form: it takes the snapshot chosen for download. */
function syncPretrained() {
  const epoch = $("to-pretrained-epoch");
  if (epoch) epoch.value = $("download_epoch").value;
}

document.addEventListener("change", (event) => {
  const id = event.target.id;
  if (!SNAPSHOT_SELECTS.includes(id)) return;
  const targets = id === PICKER ? SNAPSHOT_SELECTS : [id];
  for (const target of targets) {
    $(target).value = event.target.value;
    pickedOnPurpose.add(target);
  }
  syncPretrained();
});

/** Columns sharing one sorted x column (uPlot's aligned data); missing values are null. */
class Columns {
  constructor(count) {
    this.cols = Array.from({ length: count + 1 }, () => []);
  }

  get length() {
    return this.cols[0].length;
  }

  reset() {
    for (const col of this.cols) col.length = 0;
  }

  set(x, column, value) {
    this.cols[column][this.slot(x)] = value;
  }

  /** Index of x, inserted in order (metrics almost always arrive in order: push). */
  slot(x) {
    const xs = this.cols[0];
    const n = xs.length;
    if (n === 0 || x > xs[n - 1]) {
      for (const col of this.cols) col.push(null);
      xs[n] = x;
      return n;
    }
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (xs[mid] < x) lo = mid + 1;
      else hi = mid;
    }
    if (xs[lo] !== x) {
      for (const col of this.cols) col.splice(lo, 0, null);
      xs[lo] = x;
    }
    return lo;
  }

  last(column) {
    const col = this.cols[column];
    for (let i = col.length - 1; i >= 0; i--) if (col[i] !== null) return [this.cols[0][i], col[i]];
    return [NaN, NaN];
  }
}

const TRAIN_LOSS = 1, VAL_LOSS = 2, VAL_ACC = 3;
// The same points by each x axis the controls offer (wall time: when each was measured).
const X_MODES = ["epoch", "iteration", "time"];
const byX = Object.fromEntries(X_MODES.map((mode) => [mode, { combined: new Columns(3), rates: new Columns(1) }]));
const { combined, rates } = byX.epoch;  // the key numbers and the CSV go by epoch
let firstTime = Infinity;  // wall time counts from the first point measured
const seen = new Set();
let best = { acc: NaN, epoch: NaN };
let progressEpoch = NaN;
let reported = { progress: NaN, eta: null };  // the newest progress event

const num = (v) => (v === null || v === undefined || v === "" ? NaN : Number(v));

function addMetric(m) {
  const x = num(m?.epoch);
  if (!Number.isFinite(x)) return;
  const key = `${m.phase}:${m.iteration ?? ""}:${x}`;
  if (seen.has(key)) return;  // a replay after reconnect
  seen.add(key);
  const at = { epoch: x, iteration: num(m.iteration), time: num(m.occurred) };
  if (at.time < firstTime) firstTime = at.time;
  const put = (chart, column, value) => {
    for (const mode of X_MODES) if (Number.isFinite(at[mode])) byX[mode][chart].set(at[mode], column, value);
  };
  const values = m.values || {};
  const loss = num(values.loss);
  if (m.phase === "train") {
    if (Number.isFinite(loss)) put("combined", TRAIN_LOSS, loss);
    const lr = num(values.learning_rate);
    if (Number.isFinite(lr)) put("rates", 1, lr);
  } else if (m.phase === "val") {
    if (Number.isFinite(loss)) put("combined", VAL_LOSS, loss);
    const acc = num(values.accuracy);
    if (Number.isFinite(acc)) {
      const pct = acc * 100;
      put("combined", VAL_ACC, pct);
      if (!(pct <= best.acc)) best = { acc: pct, epoch: x };
    }
  }
}

/** A chart's data for the view's x axis (uPlot's aligned columns). */
const dataFor = (chart) => (view) => {
  const mode = X_MODES.includes(view.x) ? view.x : "epoch";
  const cols = byX[mode][chart].cols;
  return mode === "time" ? [cols[0].map((t) => t - firstTime), ...cols.slice(1)] : cols;
};

/** The x axes the points so far offer: by wall time once any point carries its time. */
function offeredModes() {
  const has = (mode) => byX[mode].combined.length > 0 || byX[mode].rates.length > 0;
  return X_MODES.filter((mode) => mode === "epoch" || has(mode));
}

// One controls bar for both charts, above the first.
const controls = chartControls($("combined-chart").closest("figure"), { xModes: ["epoch"] });
const charts = {
  combined: liveChart($("combined-chart"), combinedOptions, dataFor("combined"), { controls }),
  rates: liveChart($("lr-chart"), lrOptions, dataFor("rates"), { controls }),
};

let queued = false;

/** Redraw charts and key numbers at most once per animation frame. */
function schedule() {
  if (queued) return;
  queued = true;
  requestAnimationFrame(() => {
    queued = false;
    controls.setXModes(offeredModes());
    charts.combined.set(dataFor("combined"));
    charts.rates.set(dataFor("rates"));
    const lastX = combined.length ? combined.cols[0][combined.length - 1] : NaN;
    const epoch = Math.max(Number.isFinite(progressEpoch) ? progressEpoch : -Infinity,
      Number.isFinite(lastX) ? lastX : -Infinity);
    const total = Number($("job-page").dataset.trainEpochs);
    $("kn-epoch").textContent = !Number.isFinite(epoch) ? "—"
      : total > 0 ? `${fmtEpochTenths(epoch)} of ${total}` : fmtEpochTenths(epoch);
    // Progress events are throttled; metrics arrive more often: keep the bar up with the epoch.
    const done = total > 0 && Number.isFinite(epoch) ? Math.min(1, epoch / total) : NaN;
    const shown = reported.progress > 1 ? reported.progress / 100 : reported.progress;
    if (RUNNING.has(job.status) && done > (Number.isFinite(shown) ? shown : 0)) {
      job.setProgress(done, reported.eta);
    }
    $("kn-train-loss").textContent = fmtLoss(combined.last(TRAIN_LOSS)[1]);
    $("kn-val-loss").textContent = fmtLoss(combined.last(VAL_LOSS)[1]);
    $("kn-best-acc").textContent = Number.isFinite(best.acc)
      ? `${best.acc.toFixed(2)} % (epoch ${fmtEpochTenths(best.epoch)})` : "—";
    $("kn-lr").textContent = fmtPlain(rates.last(1)[1]);
    $("chart-empty").hidden = combined.length > 0 || rates.length > 0;
  });
}

function snapshotEpochs() {
  return [...$(PICKER).options].map((option) => option.value);
}

function addSnapshot(epoch) {
  const key = fmtEpoch(num(epoch));
  const epochs = snapshotEpochs();
  if (key === "—" || epochs.includes(key)) return;
  showSnapshots([...epochs, key]);
}

function removeSnapshot(epoch) {
  // Retention (snapshot_keep) deleted it: it can no longer be chosen.
  const key = fmtEpoch(num(epoch));
  showSnapshots(snapshotEpochs().filter((e) => e !== key));
}

/** Fill every snapshot select, newest first, at the newest unless the user picked one that
 *  still exists; the cards that need a snapshot appear with the first one. */
function showSnapshots(epochs) {
  epochs.sort((a, b) => Number(b) - Number(a));
  const newestBefore = snapshotEpochs()[0];
  for (const id of SNAPSHOT_SELECTS) {
    const select = $(id);
    const chosen = select.value;
    select.replaceChildren(...epochs.map((e) => el("option", { value: e }, `Epoch #${e}`)));
    // Picking the newest means "the newest": only an older pick stays put.
    const keep = pickedOnPurpose.has(id) && chosen !== newestBefore && epochs.includes(chosen);
    if (!keep) pickedOnPurpose.delete(id);
    select.value = keep ? chosen : (epochs[0] ?? "");
  }
  syncPretrained();
  const none = epochs.length === 0;
  $("snapshot_epoch").disabled = none;
  $("classify-button").disabled = none;
  $("classify-hint").hidden = !none;
  $("snapshots-empty").hidden = !none;
  $("snapshot-pick").hidden = none;
  $("snapshot-count").textContent = `${epochs.length} snapshot${epochs.length === 1 ? "" : "s"}`;
  $("test-many-card").hidden = none;
  $("download-card").hidden = none;
}

function setProgress(e) {
  if (typeof e.progress === "number") reported = { progress: e.progress, eta: e.eta_seconds };
  job.setProgress(e.progress, e.eta_seconds);
  if (Number.isFinite(num(e.epoch))) {
    progressEpoch = num(e.epoch);
    schedule();
  }
}

$("download-csv").addEventListener("click", () => {
  const lines = ["epoch,train_loss,val_loss,val_accuracy_pct,learning_rate"];
  const lrAt = new Map(rates.cols[0].map((x, i) => [x, rates.cols[1][i]]));
  const [xs, train, val, acc] = combined.cols;
  const all = [...new Set([...xs, ...rates.cols[0]])].sort((a, b) => a - b);
  const at = new Map(xs.map((x, i) => [x, i]));
  for (const x of all) {
    const i = at.get(x);
    const cell = (col) => (i === undefined || col[i] === null ? "" : col[i]);
    lines.push([x, cell(train), cell(val), cell(acc), lrAt.get(x) ?? ""].join(","));
  }
  const link = el("a", {
    href: URL.createObjectURL(new Blob([lines.join("\n") + "\n"], { type: "text/csv" })),
    download: `${job.id}-metrics.csv`,
  });
  link.click();
  setTimeout(() => URL.revokeObjectURL(link.href), 1000);
});

/** The model JSON names only the dataset id: show its name when the dataset still exists. */
async function showDatasetName() {
  const id = $("job-page").dataset.datasetId;
  const links = document.querySelectorAll("a[data-dataset-name]");
  if (!id || ![...links].some((a) => a.dataset.datasetName === id)) return;
  try {
    const response = await fetch(`/datasets/${encodeURIComponent(id)}.json`);
    const name = response.ok ? (await response.json()).name : "";
    if (name) for (const a of document.querySelectorAll("a[data-dataset-name]")) a.textContent = name;
  } catch (error) {
    console.warn("dataset name not loaded", error);
  }
}

connectLive(`/jobs/${encodeURIComponent(job.id)}/events`, forJob(job.id, {
  history(h) {
    for (const mode of X_MODES) Object.values(byX[mode]).forEach((columns) => columns.reset());
    firstTime = Infinity;
    seen.clear();
    best = { acc: NaN, epoch: NaN };
    reported = { progress: NaN, eta: null };
    for (const m of h.metrics || []) addMetric(m);
    for (const s of h.snapshots || []) addSnapshot(s);
    if (job.setHistory(h.status_history, h.status, h.status_notes)) job.refresh().then(showDatasetName);
    setProgress(h);
    schedule();
  },
  metric(m) {
    addMetric(m);
    schedule();
  },
  progress: setProgress,
  gpu(e) {
    dispatchEvent(new CustomEvent("digits:gpu", { detail: e }));  // hardware.js
  },
  snapshot(e) {
    if (e.deleted) removeSnapshot(e.epoch);
    else addSnapshot(e.epoch);
  },
  status(e) {
    if (job.setStatus(e.status, undefined, e.note)) job.refresh().then(showDatasetName);
  },
  deleted() {
    job.markDeleted();
  },
}));
schedule();
showDatasetName();
