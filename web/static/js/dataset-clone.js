// New-dataset form opened with ?clone=<id>: fill every field from that dataset's saved form
// (DIGITS's "Clone job"). Uploaded files cannot be refilled; the user picks them again.
const clone = new URLSearchParams(location.search).get("clone");
const form = document.querySelector("form[data-form]");

function fill(saved) {
  for (const [name, value] of Object.entries(saved)) {
    const fields = form.querySelectorAll(`[name="${CSS.escape(name)}"]`);
    for (const field of fields) {
      if (field.type === "file" || field.type === "hidden") continue;
      if (field.type === "radio") field.checked = field.value === String(value);
      else if (field.type === "checkbox") field.checked = ["1", "on", "true", "y"].includes(String(value).split(",").pop());
      else field.value = String(value);
    }
  }
  const name = form.elements.dataset_name;
  if (name && name.value && !name.value.endsWith(" (clone)")) name.value = `${name.value} (clone)`;
  form.dispatchEvent(new Event("change", { bubbles: true }));
  form.querySelector('input[name="method"]:checked')?.dispatchEvent(new Event("change", { bubbles: true }));
}

if (clone && form) {
  fetch(`/datasets/${encodeURIComponent(clone)}.json`, { headers: { Accept: "application/json" } })
    .then((r) => (r.ok ? r.json() : Promise.reject(new Error(`${r.status}`))))
    .then((job) => fill(job.form || {}))
    .catch((error) => console.warn("clone: form not filled", error));
}
