// A job's tags on the home list: chips (a click filters by the tag) and, for whoever may change
// the job, an in-place editor that PUTs `job_tags` to /jobs/<id> as the notes editor does.
import { csrfHeaders, el, responseError } from "./util.js";

/** Tags as typed: split at commas, trimmed, empty ones and repeats dropped (the server's rule). */
export function parseTags(text) {
  const seen = new Set();
  const out = [];
  for (const raw of String(text).split(",")) {
    const tag = raw.split(/\s+/).filter(Boolean).join(" ");
    if (!tag || seen.has(tag.toLocaleLowerCase())) continue;
    seen.add(tag.toLocaleLowerCase());
    out.push(tag);
  }
  return out;
}

async function saveTags(jobId, tags) {
  const response = await fetch(`/jobs/${encodeURIComponent(jobId)}`, {
    method: "PUT",
    headers: csrfHeaders({ Accept: "application/json" }),
    body: new URLSearchParams({ job_tags: tags.join(",") }),
  });
  if (response.ok) return "";
  const data = await response.clone().json().catch(() => null);
  const errors = data?.errors && Object.values(data.errors).flat();
  return errors?.length ? errors.join(" ") : responseError(response);
}

/**
 * Fill `box` with the job's tag chips (+ "Edit tags" when `editable`).
 * `onFilter(tag)` is called when a chip is clicked; `onSaved(tags)` after a successful save.
 */
export function renderTags(box, data, { editable, onFilter, onSaved }) {
  const tags = data.tags || [];
  const chips = el("ul", { class: "chips tag-chips", "aria-label": "Tags" },
    ...tags.map((tag) => el("li", {}, el("button", {
      type: "button", class: "chip tag-chip", dataset: { tag }, title: `Show only jobs tagged ${tag}`,
    }, tag))));
  for (const button of chips.querySelectorAll("button")) {
    button.addEventListener("click", () => onFilter(button.dataset.tag));
  }
  box.replaceChildren(tags.length ? chips : "");
  if (!editable) return;
  const name = data.name || data.id;
  const edit = el("button", { type: "button", class: "btn btn-ghost btn-small tag-edit", "aria-expanded": "false" },
    tags.length ? "Edit tags" : "Add tags");
  edit.setAttribute("aria-label", `${tags.length ? "Edit" : "Add"} tags of ${name}`);
  box.append(edit);
  edit.addEventListener("click", () => openEditor(box, data, { edit, chips, onSaved }));
}

function openEditor(box, data, { edit, chips, onSaved }) {
  const id = `tags-${data.id}`;
  const input = el("input", { type: "text", id, value: (data.tags || []).join(", "), autocomplete: "off",
    "aria-describedby": `${id}-help` });
  const error = el("p", { class: "field-error", role: "alert", hidden: true });
  const form = el("form", { class: "tag-form" },
    el("label", { for: id }, `Tags of ${data.name || data.id}`),
    input,
    el("p", { class: "help", id: `${id}-help` }, "Separate tags with commas."),
    error,
    el("div", { class: "tag-form-actions" },
      el("button", { type: "submit", class: "btn btn-small btn-primary" }, "Save"),
      el("button", { type: "button", class: "btn btn-small btn-ghost", dataset: { cancel: "" } }, "Cancel")));
  const close = () => {
    form.remove();
    chips.hidden = false;
    edit.hidden = false;
    edit.setAttribute("aria-expanded", "false");
    edit.focus();
  };
  form.addEventListener("keydown", (event) => {
    if (event.key === "Escape") close();
  });
  form.querySelector("[data-cancel]").addEventListener("click", close);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const tags = parseTags(input.value);
    const problem = await saveTags(data.id, tags);
    if (problem) {
      error.textContent = problem;
      error.hidden = false;
      input.setAttribute("aria-invalid", "true");
      input.focus();
      return;
    }
    form.remove();
    onSaved(tags);
  });
  chips.hidden = true;
  edit.hidden = true;
  edit.setAttribute("aria-expanded", "true");
  box.append(form);
  input.focus();
}
