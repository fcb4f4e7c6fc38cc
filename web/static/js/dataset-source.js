// New-dataset form: show only the chosen source (folder / textfile / upload) and, for
// textfile, only uploads or only server paths. Hidden inputs are disabled so that the
// browser neither validates nor sends them.
const form = document.querySelector("form[data-form]");
const sections = form ? [...form.querySelectorAll(".method-section")] : [];

function setEnabled(container, enabled) {
  container.hidden = !enabled;
  for (const input of container.querySelectorAll("input, select, textarea")) input.disabled = !enabled;
}

function update() {
  const method = form.querySelector('input[name="method"]:checked')?.value || "folder";
  for (const section of sections) setEnabled(section, section.dataset.method === method);
  if (method !== "textfile") return;
  const local = form.querySelector("#textfile_use_local_files")?.checked;
  for (const input of form.querySelectorAll("[data-upload]")) setEnabled(input.closest(".field"), !local);
  for (const input of form.querySelectorAll("[data-local]")) setEnabled(input.closest(".field"), !!local);
}

if (form && sections.length) {
  form.addEventListener("change", (event) => {
    if (event.target.name === "method" || event.target.id === "textfile_use_local_files") update();
  });
  update();
}
