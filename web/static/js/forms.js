// Forms: focus the error summary, prevent double submits, fill the dataset list from /index.json.
import { RUNNING, el } from "./util.js";

document.getElementById("error-summary")?.focus();

for (const form of document.querySelectorAll("form[data-form]")) {
  form.addEventListener("submit", (event) => {
    if (form.dataset.submitting) {
      event.preventDefault();
      return;
    }
    form.dataset.submitting = "1";
    for (const button of form.querySelectorAll("button[type=submit]")) button.disabled = true;
  });
}

// Back/forward cache restores the page as it was left: make the form usable again. A form
// restored after it was sent is a new request (its fields may change): a fresh Idempotency-Key.
addEventListener("pageshow", (event) => {
  for (const form of document.querySelectorAll("form[data-form]")) {
    const key = form.elements.idempotency_key;
    if (event.persisted && form.dataset.submitting && key) key.value = freshKey();
    delete form.dataset.submitting;
    for (const button of form.querySelectorAll("button[type=submit]")) button.disabled = false;
  }
});

function freshKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));  // randomUUID needs a secure context
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

async function fillDatasets(select) {
  let data;
  try {
    const response = await fetch("/index.json", { headers: { Accept: "application/json" } });
    if (!response.ok) throw new Error(`/index.json: ${response.status}`);
    data = await response.json();
  } catch (error) {
    console.warn("dataset list not refreshed", error);  // the server-rendered list stays
    return;
  }
  const usable = (data.datasets || []).filter((d) => d.id && (d.status === "Done" || RUNNING.has(d.status)));
  const wanted = select.value || select.dataset.selected || new URLSearchParams(location.search).get("dataset");
  select.replaceChildren(
    el("option", { value: "" }, "Choose a dataset…"),
    ...usable.map((d) => el("option", { value: d.id },
      d.status === "Done" ? (d.name || d.id) : `${d.name || d.id} (${d.status})`)),
  );
  if (usable.some((d) => d.id === wanted)) select.value = wanted;
  else if (usable.length === 1) select.value = usable[0].id;
  document.getElementById("dataset-none").hidden = usable.length > 0;
}

const datasetSelect = document.querySelector("select[data-datasets]");
if (datasetSelect) fillDatasets(datasetSelect);
