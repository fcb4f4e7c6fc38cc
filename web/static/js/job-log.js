// The model's raw training log (DIGITS's "Raw output"): loaded when the panel opens, then
// re-read every 3 s while it stays open and the job runs (the gateway reads it live from the
// trainer running the job).
import { RUNNING } from "./util.js";

const panel = document.getElementById("log-panel");
const text = document.getElementById("job-log");
const state = document.getElementById("log-state");
const badge = document.getElementById("job-status");
let timer = null;

async function load() {
  state.textContent = "Loading…";
  try {
    const response = await fetch(panel.dataset.logUrl, { cache: "no-store" });
    const body = await response.text();
    if (!response.ok) {
      text.textContent = "";
      state.textContent = response.status === 404 ? body : `Could not load the log (${response.status}).`;
      return;
    }
    // Stay at the bottom when the reader was there (a tail), else keep their place.
    const atEnd = text.scrollHeight - text.scrollTop - text.clientHeight < 24;
    text.textContent = body;
    if (atEnd) text.scrollTop = text.scrollHeight;
    state.textContent = `${body.split("\n").filter(Boolean).length} lines, read ${new Date().toLocaleTimeString()}`;
  } catch (error) {
    state.textContent = `Could not load the log: ${error.message}`;
  }
}

function follow() {
  clearInterval(timer);
  timer = null;
  if (!panel.open) return;
  load();
  if (RUNNING.has(badge?.dataset.status)) timer = setInterval(() => {
    if (!RUNNING.has(badge?.dataset.status)) follow();
    else load();
  }, 3000);
}

if (panel) {
  panel.addEventListener("toggle", follow);
  document.getElementById("log-reload").addEventListener("click", load);
}
