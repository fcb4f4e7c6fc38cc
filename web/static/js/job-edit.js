// Rename a job in place and edit its notes (DIGITS's PUT /jobs/<id> with job_name / job_notes).
import { csrfHeaders, responseError } from "./util.js";

const $ = (id) => document.getElementById(id);

/** PUT the fields as a form (what DIGITS's page sent); resolves to an error text or "". */
async function save(jobId, fields) {
  const response = await fetch(`/jobs/${encodeURIComponent(jobId)}`, {
    method: "PUT",
    headers: csrfHeaders({ Accept: "application/json" }),
    body: new URLSearchParams(fields),
  });
  if (response.ok) return "";
  if (response.status === 400) {
    const data = await response.clone().json().catch(() => null);
    const errors = data?.errors && Object.values(data.errors).flat();
    if (errors?.length) return errors.join(" ");
  }
  return responseError(response);
}

/** A button that opens a form in place of the text it edits; Escape or Cancel closes it. */
function toggler(button, form, shown, focusTarget) {
  function open(on) {
    form.hidden = !on;
    shown.hidden = on;
    button.hidden = on;
    button.setAttribute("aria-expanded", String(on));
    if (on) {
      focusTarget.focus();
      focusTarget.select?.();
    } else {
      button.focus();
    }
  }
  button.addEventListener("click", () => open(true));
  form.addEventListener("keydown", (event) => {
    if (event.key === "Escape") open(false);
  });
  return open;
}

function setupRename() {
  const title = $("job-title");
  if (!title?.dataset.editable) return;
  const jobId = title.dataset.jobId;
  const name = $("job-name");
  const form = $("rename-form");
  const input = $("job-name-input");
  const message = $("rename-message");
  const open = toggler($("rename-button"), form, name, input);
  $("rename-cancel").addEventListener("click", () => {
    input.value = name.textContent;
    message.textContent = "";
    open(false);
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const value = input.value.trim();
    if (!value) {
      message.textContent = "The name cannot be blank.";
      input.focus();
      return;
    }
    const error = await save(jobId, { job_name: value });
    message.textContent = error ? `Could not rename: ${error}` : "";
    if (error) return;
    const old = name.textContent;
    name.textContent = value;
    document.title = document.title.replace(old, value);
    open(false);
  });
}

function setupNotes() {
  const form = $("notes-form");
  const button = $("notes-edit");
  if (!form || !button) return;
  const jobId = $("job-page").dataset.jobId;
  const shown = $("job-notes");
  const input = $("job-notes-input");
  const message = $("notes-message");
  const open = toggler(button, form, shown, input);
  $("notes-cancel").addEventListener("click", () => {
    input.value = shown.dataset.empty ? "" : shown.textContent;
    open(false);
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const value = input.value.trim();
    const error = await save(jobId, { job_notes: value });
    message.textContent = error ? `Could not save the notes: ${error}` : "Notes saved.";
    message.classList.toggle("action-message", Boolean(error));
    if (error) return;
    if (value) {
      shown.textContent = value;
      delete shown.dataset.empty;
    } else {
      shown.replaceChildren(Object.assign(document.createElement("span"), { className: "muted", textContent: "No notes." }));
      shown.dataset.empty = "true";
    }
    open(false);
  });
}

setupRename();
setupNotes();
