// Forms with a file input marked data-chunked="<purpose>" (dataset archive, pretrained model):
// the file goes to /api/v1/uploads in chunks, with a progress bar, a Cancel button and retries
// from the server's offset after a dropped connection; then the form is sent with the upload's
// id instead of the file, so no request-size cap applies. Without JS the file is sent as before.
import { csrfHeaders, el, fmtDuration, responseError } from "./util.js";

const CHUNK = 8 * 1024 * 1024;  // under the server's 16 MiB per PATCH; a retry costs at most this
const RETRIES = 6;  // consecutive failed chunks (network down) before giving up

class Refused extends Error {}  // the server said no: retrying will not help

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function megabytes(n) {
  return `${(n / 1048576).toLocaleString(undefined, { maximumFractionDigits: n < 1e7 ? 1 : 0 })} MB`;
}

async function json(response) {
  if (!response.ok && response.status !== 409) throw new Refused(await responseError(response));
  return response.json();
}

async function serverOffset(id, signal) {
  const response = await fetch(`/api/v1/uploads/${id}`, { headers: { Accept: "application/json" }, signal });
  return (await json(response)).offset;
}

/** Send `file` as upload `purpose`; `created(id)` once announced, `report(offset)` after each
 * chunk; the upload's id. */
async function send(file, purpose, created, report, signal) {
  const response = await fetch("/api/v1/uploads", {
    method: "POST",
    headers: csrfHeaders({ "Content-Type": "application/json", Accept: "application/json" }),
    body: JSON.stringify({ filename: file.name, size: file.size, purpose }),
    signal,
  });
  const { id } = await json(response);
  created(id);
  let offset = 0;
  let failures = 0;
  while (offset < file.size) {
    try {
      const response = await fetch(`/api/v1/uploads/${id}`, {
        method: "PATCH",
        headers: csrfHeaders({
          "Content-Type": "application/offset+octet-stream",
          "Upload-Offset": String(offset),
          Accept: "application/json",
        }),
        body: file.slice(offset, offset + CHUNK),
        signal,
      });
      offset = (await json(response)).offset;  // a 409 names the offset to go on from
      failures = 0;
      report(offset);
    } catch (error) {
      if (signal.aborted || error instanceof Refused || ++failures > RETRIES) throw error;
      await sleep(500 * 2 ** failures);
      try {
        offset = await serverOffset(id, signal);  // what arrived before the cut is kept
      } catch { /* still down: try the same chunk again */ }
    }
  }
  return id;
}

function progressBlock(input) {
  const bar = el("progress", { max: "100", value: "0", "aria-label": "Upload progress" });
  const text = el("p", { class: "progress-text" });
  const status = el("p", { class: "help", role: "status" });
  const cancel = el("button", { type: "button", class: "btn" }, "Cancel upload");
  const block = el("div", { class: "upload-progress", hidden: true }, bar, text, el("div", { class: "form-actions" }, cancel), status);
  input.closest(".field").append(block);
  return { block, bar, text, status, cancel };
}

function enableSubmit(form) {
  delete form.dataset.submitting;
  for (const button of form.querySelectorAll("button[type=submit]")) button.disabled = false;
}

function watch(form, input) {
  const ui = progressBlock(input);
  let uploading = null;

  ui.cancel.addEventListener("click", () => uploading?.abort());
  addEventListener("beforeunload", (event) => {
    if (uploading) event.preventDefault();  // leaving would abandon the upload
  });

  form.addEventListener("submit", async (event) => {
    const file = input.files?.[0];
    if (event.defaultPrevented || input.disabled || !file) return;  // nothing to upload here
    event.preventDefault();
    form.querySelector("input[name=upload_id]")?.remove();  // a new file replaces an earlier upload
    const controller = new AbortController();
    uploading = controller;
    let id = null;
    const started = performance.now();
    ui.block.hidden = false;
    ui.cancel.hidden = false;
    ui.status.textContent = `Uploading ${file.name}…`;
    const report = (offset) => {
      const share = file.size ? (100 * offset) / file.size : 100;
      const seconds = (performance.now() - started) / 1000;
      const left = offset > 0 ? (seconds * (file.size - offset)) / offset : NaN;
      ui.bar.value = share;
      ui.text.textContent = `${megabytes(offset)} of ${megabytes(file.size)} (${Math.floor(share)} %)`
        + (offset < file.size && Number.isFinite(left) ? ` · ${fmtDuration(left)} left` : "");
    };
    report(0);
    try {
      await send(file, input.dataset.chunked, (created) => { id = created; }, report, controller.signal);
      uploading = null;
      ui.cancel.hidden = true;
      ui.status.textContent = `${file.name} uploaded; creating…`;
      form.append(el("input", { type: "hidden", name: "upload_id", value: id }));
      input.disabled = true;  // the bytes are on the server already: the form sends only the id
      input.dataset.sentAsUpload = "1";
      form.submit();
    } catch (error) {
      uploading = null;
      if (id) {  // a half-sent upload would hold the user's quota until it expires
        fetch(`/api/v1/uploads/${id}`, { method: "DELETE", headers: csrfHeaders() }).catch(() => {});
      }
      ui.status.textContent = controller.signal.aborted
        ? "Upload cancelled."
        : `Upload failed: ${error.message || error}`;
      ui.cancel.hidden = true;
      enableSubmit(form);
    }
  });
}

const inputs = [...document.querySelectorAll("form input[type=file][data-chunked]")];
for (const input of inputs) watch(input.form, input);

// Back/forward cache: a form restored after it was sent may choose another file.
addEventListener("pageshow", () => {
  for (const input of inputs) {
    if (!input.dataset.sentAsUpload) continue;
    input.disabled = false;
    delete input.dataset.sentAsUpload;
  }
});
