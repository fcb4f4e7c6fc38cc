// Behaviour shared by job pages: status badge + history, progress/ETA, abort and delete.
import {
  RUNNING, applySizes, badge, csrfHeaders, el, fmtDuration, hydrateTimes, responseError, setBadge,
  timeEl, toDate,
} from "./util.js";

const $ = (id) => document.getElementById(id);

/** Ask in the page's <dialog> (focus starts on Cancel); resolves true on confirm. */
function confirmDialog(title, text, okLabel) {
  const dialog = $("confirm-dialog");
  $("confirm-title").textContent = title;
  $("confirm-text").textContent = text;
  $("confirm-ok").textContent = okLabel;
  dialog.returnValue = "";
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    dialog.showModal();
  });
}

/** Headers plus the page's Idempotency-Key, when it has one. */
function keyed(headers, key) {
  return key ? { ...headers, "Idempotency-Key": key } : headers;
}

export function jobPage() {
  const page = $("job-page");
  const id = page.dataset.jobId;
  const kind = page.dataset.kind;  // "datasets" | "models" | "pretrained_models"
  const noun = { models: "model", pretrained_models: "pretrained model" }[kind] || "dataset";
  const statusBadge = $("job-status");
  // Absent when the signed-in user may not change this job: stand-ins keep the code simple.
  const abortForm = $("abort-form") || document.createElement("form");
  const abortButton = $("abort-button") || document.createElement("button");
  const deleteButton = $("delete-button") || document.createElement("button");
  const message = $("action-message");
  let status = statusBadge.dataset.status;

  function setProgress(progress, etaSeconds) {
    if (typeof progress !== "number" || !Number.isFinite(progress)) return;
    const pct = Math.max(0, Math.min(100, Math.round(progress <= 1 ? progress * 100 : progress)));
    $("job-progress").value = pct;
    $("job-progress-text").textContent = `${pct} %`;
    const eta = fmtDuration(etaSeconds);
    $("job-eta").textContent = eta;
    $("job-eta-wrap").hidden = !eta || !RUNNING.has(status);
  }

  /** A history row: the status, what it says beside it (a worker lost), when. */
  function historyRow(name, when, note) {
    const cell = el("td", {}, badge(name));
    if (note) cell.append(" ", el("span", { class: "muted history-note" }, note));
    return el("tr", {}, cell, el("td", {}, when ? timeEl(when) : ""));
  }

  /** Apply a status; returns true when it changed (a replayed one adds no history row). A
   *  `note` adds its row even for the same status ("resumed after the worker … was lost"). */
  function setStatus(next, when = new Date(), note = "") {
    if (!next || (next === status && !note)) return false;
    status = next;
    setBadge(statusBadge, next);
    if (when) {
      const rows = $("status-history");
      rows.querySelector(".empty-row")?.remove();
      rows.append(historyRow(next, when, note));
    }
    const running = RUNNING.has(next);
    $("progress-block").hidden = !running;
    abortForm.hidden = !running;
    abortButton.disabled = false;
    if (next === "Done") setProgress(1, null);
    if (!running) $("job-eta-wrap").hidden = true;
    return true;
  }

  /** Rebuild the history table from [[status, timestamp], …] and the notes beside them (a
   *  stream's first message). */
  function setHistory(items, current, notes = []) {
    if (!Array.isArray(items) || !items.length) return setStatus(current);
    const noted = items.map((item, n) => [item, Array.isArray(notes) ? notes[n] : ""]);
    const rows = noted.filter(([item]) => Array.isArray(item) && item[0]).map(([[name, at], note]) =>
      historyRow(name, toDate(at), note));
    $("status-history").replaceChildren(...rows);
    const last = current || items[items.length - 1][0];
    const changed = last !== status;
    status = null;  // force the badge and controls to follow, without adding a row
    setStatus(last, null);
    return changed;
  }

  function markDeleted() {
    $("deleted-notice").hidden = false;
    abortForm.hidden = true;
    deleteButton.disabled = true;
    for (const node of page.querySelectorAll("form button, form input, form select")) node.disabled = true;
  }

  /** Re-render the server-drawn parts ([data-refresh] with an id) from a fresh GET of this page. */
  async function refresh() {
    try {
      const response = await fetch(location.pathname, { headers: { Accept: "text/html" } });
      if (!response.ok) return;
      const doc = new DOMParser().parseFromString(await response.text(), "text/html");
      for (const node of document.querySelectorAll("[data-refresh][id]")) {
        const fresh = doc.getElementById(node.id);
        if (fresh) node.replaceWith(document.importNode(fresh, true));
      }
      hydrateTimes();
      applySizes();
    } catch (error) {
      console.warn("refresh failed", error);
    }
  }

  abortForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const ok = await confirmDialog(`Abort this ${noun}?`, "The job stops now; work done so far is kept.", "Abort job");
    if (!ok) return;
    message.textContent = "";
    abortButton.disabled = true;
    // The rendered form's key: a resend (a lost answer, a second click) is the same abort.
    const response = await fetch(abortForm.action, { method: "POST", headers: keyed(csrfHeaders(), abortForm.elements.idempotency_key?.value) });
    if (!response.ok) {
      abortButton.disabled = false;
      message.textContent = `Could not abort: ${await responseError(response)}`;
    }
  });

  deleteButton.addEventListener("click", async () => {
    const ok = await confirmDialog(`Delete this ${noun}?`, "Its files are removed. This cannot be undone.", "Delete job");
    if (!ok) return;
    message.textContent = "";
    const headers = keyed(csrfHeaders(), deleteButton.dataset.idempotencyKey);
    const response = await fetch(`/${kind}/${encodeURIComponent(id)}`, { method: "DELETE", headers });
    if (response.ok) location.assign("/");
    else message.textContent = `Could not delete: ${await responseError(response)}`;
  });

  return {
    id, kind, setStatus, setHistory, setProgress, markDeleted, refresh,
    get status() { return status; },
  };
}

/** Wrap handlers so events that name another job (a shared stream) are ignored. */
export function forJob(id, handlers) {
  const wrapped = {};
  for (const [type, handler] of Object.entries(handlers)) {
    wrapped[type] = (payload, event) => {
      if (payload && payload.job_id && payload.job_id !== id) return;
      handler(payload, event);
    };
  }
  return wrapped;
}
