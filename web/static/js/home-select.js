// Several jobs at once on the home list: a checkbox per row, then Compare (models), Abort or
// Delete through the per-job routes, one confirmation for the lot, each job's failure shown in
// its own row.
import { RUNNING, csrfHeaders, el, responseError } from "./util.js";

const $ = (id) => document.getElementById(id);
const selected = new Set();
let lookup = () => null;  // id → {kind, data, row}
let dropped = () => {};   // a job was deleted here

/** Wire the selection bar; `find(id)` returns a job's entry, `onDeleted(id)` drops its row. */
export function setupSelection(find, onDeleted) {
  lookup = find;
  dropped = onDeleted;
  $("sel-clear").addEventListener("click", () => clearSelection());
  $("sel-compare").addEventListener("click", () => {
    const ids = [...selected].filter((id) => lookup(id)?.kind === "models");
    location.assign(`/models/compare?ids=${ids.map(encodeURIComponent).join(",")}`);
  });
  $("sel-abort")?.addEventListener("click", () => confirmThen("abort"));
  $("sel-delete")?.addEventListener("click", () => confirmThen("delete"));
  for (const box of document.querySelectorAll(".select-all")) {
    box.addEventListener("change", () => {
      const rows = document.querySelectorAll(`#${box.dataset.kind}-table tr[data-job-id]:not([hidden])`);
      for (const row of rows) toggle(row.dataset.jobId, box.checked);
    });
  }
}

/** The row's checkbox (labelled with the job's name). */
export function checkbox(data) {
  const box = el("input", { type: "checkbox", class: "row-select", "aria-label": `Select ${data.name || data.id}` });
  box.checked = selected.has(data.id);
  box.addEventListener("change", () => toggle(data.id, box.checked));
  return box;
}

export function toggle(id, on) {
  if (on) selected.add(id);
  else selected.delete(id);
  const box = lookup(id)?.row.querySelector(".row-select");
  if (box) box.checked = on;
  refreshBar();
}

export function forget(id) {
  if (selected.delete(id)) refreshBar();
}

export function clearSelection() {
  $("selection-result").replaceChildren();
  for (const id of [...selected]) toggle(id, false);
  refreshBar();
}

function refreshBar() {
  const bar = $("selection-bar");
  const entries = [...selected].map((id) => lookup(id)).filter(Boolean);
  // A finished run's report stays readable after its jobs left the selection.
  bar.hidden = entries.length === 0 && !$("selection-result").textContent;
  $("selection-count").textContent = `${entries.length} selected`;
  const models = entries.filter((e) => e.kind === "models").length;
  const compare = $("sel-compare");
  compare.disabled = models < 2 || models !== entries.length;
  $("selection-note").textContent = models !== entries.length && entries.length
    ? "Compare takes models only." : models < 2 && entries.length ? "Select 2 or more models to compare." : "";
  const abort = $("sel-abort");
  if (abort) abort.disabled = !entries.some((e) => RUNNING.has(e.data.status));
  const remove = $("sel-delete");
  if (remove) remove.disabled = entries.length === 0;
  for (const box of document.querySelectorAll(".select-all")) {
    const rows = [...document.querySelectorAll(`#${box.dataset.kind}-table tr[data-job-id]:not([hidden])`)];
    const on = rows.filter((r) => selected.has(r.dataset.jobId)).length;
    box.checked = rows.length > 0 && on === rows.length;
    box.indeterminate = on > 0 && on < rows.length;
  }
}

export { refreshBar };

function confirmThen(action) {
  const entries = [...selected].map((id) => lookup(id)).filter(Boolean)
    .filter((e) => action === "delete" || RUNNING.has(e.data.status));
  if (!entries.length) return;
  const dialog = $("bulk-dialog");
  const noun = entries.length === 1 ? "job" : "jobs";
  $("bulk-title").textContent = action === "delete" ? `Delete ${entries.length} ${noun}?` : `Abort ${entries.length} ${noun}?`;
  $("bulk-text").textContent = action === "delete"
    ? "Their files, snapshots and results are removed. This cannot be undone."
    : "Training or building stops; what was saved so far stays.";
  $("bulk-list").replaceChildren(...entries.map((e) => el("li", {}, e.data.name || e.data.id)));
  const confirm = $("bulk-confirm");
  confirm.textContent = action === "delete" ? "Delete" : "Abort";
  confirm.className = action === "delete" ? "btn btn-danger" : "btn btn-warning";
  dialog.returnValue = "";
  dialog.addEventListener("close", () => {
    if (dialog.returnValue === "confirm") run(action, entries);
    else $(action === "delete" ? "sel-delete" : "sel-abort")?.focus();
  }, { once: true });
  dialog.showModal();
  $("bulk-cancel").focus();
}

async function one(action, entry) {
  const id = encodeURIComponent(entry.data.id);
  const url = action === "delete" ? `/jobs/${id}` : `/jobs/${id}/abort`;
  const response = await fetch(url, {
    method: action === "delete" ? "DELETE" : "POST",
    headers: csrfHeaders({ Accept: "application/json" }),
  });
  return response.ok ? "" : `${response.status}: ${await responseError(response)}`;
}

async function run(action, entries) {
  const result = $("selection-result");
  result.replaceChildren(`${action === "delete" ? "Deleting" : "Aborting"} ${entries.length}…`);
  const outcomes = await Promise.all(entries.map(async (entry) => {
    try {
      return [entry, await one(action, entry)];
    } catch (error) {
      return [entry, String(error.message || error)];
    }
  }));
  const failed = [];
  for (const [entry, problem] of outcomes) {
    entry.row.querySelector(".row-error")?.remove();
    if (!problem) {
      if (action === "delete") dropped(entry.data.id);
      else toggle(entry.data.id, false);
      continue;
    }
    failed.push(entry);
    entry.row.querySelector(".name-cell").append(el("p", { class: "row-error", role: "status" },
      `Could not ${action}: ${problem}`));
  }
  const done = outcomes.length - failed.length;
  const verb = action === "delete" ? "deleted" : "aborted";
  result.replaceChildren(
    failed.length ? `${done} ${verb}, ${failed.length} failed (see the marked rows).` : `${done} ${verb}.`);
  refreshBar();
}
