// Inline validation of the new-model form: each field is checked when it changes and all of
// them on submit; messages sit next to the field, worded like the server's (digits_gateway.forms).
import { el } from "./util.js";

const LISTS = {
  learning_rate: { min: 0, integer: false },
  batch_size: { min: 1, integer: true },
  lr_multistep_values: { min: 0, integer: false },
};

function listError(value, { min, integer }) {
  for (const part of value.replace(/[[\]]/g, "").split(",")) {
    const text = part.trim();
    if (!text) continue;
    const n = Number(text);
    if (!Number.isFinite(n) || (integer && !Number.isInteger(n))) {
      return `Not a valid ${integer ? "integer" : "float"} value: '${text}'.`;
    }
    if (n < min) return `Every value must be at least ${min}.`;
  }
  return "";
}

/** The message for one field, "" when it is fine (hidden fields are not checked). */
export function fieldError(field) {
  if (field.closest("[hidden]") || field.type === "hidden" || field.disabled) return "";
  const v = field.validity;
  if (field.name in LISTS) {
    if (field.required && !field.value.trim()) return "This field is required.";
    return listError(field.value, LISTS[field.name]);
  }
  if (v.valueMissing) return "This field is required.";
  if (v.badInput) return "Not a valid number.";
  if (v.rangeUnderflow) return `Number must be at least ${field.min}.`;
  if (v.rangeOverflow) return `Number must be at most ${field.max}.`;
  if (v.stepMismatch) return "Must be a whole number.";
  return "";
}

function show(field, message) {
  const box = field.closest(".field");
  if (!box) return;
  const id = `${field.id}-error`;
  let list = document.getElementById(id);
  const described = new Set((field.getAttribute("aria-describedby") || "").split(" ").filter(Boolean));
  if (message) {
    if (!list) {
      list = el("ul", { class: "field-errors", id });
      (box.querySelector(".input-row") || field).before(list);
    }
    list.replaceChildren(el("li", {}, el("span", { "aria-hidden": "true" }, "⚠ "), message));
    described.add(id);
    field.setAttribute("aria-invalid", "true");
  } else {
    list?.remove();
    described.delete(id);
    field.removeAttribute("aria-invalid");
  }
  box.classList.toggle("has-error", Boolean(message));
  if (described.size) field.setAttribute("aria-describedby", [...described].join(" "));
  else field.removeAttribute("aria-describedby");
}

const checked = (form) => [...form.querySelectorAll(".field input[id], .field select[id]")]
  .filter((f) => f.type !== "checkbox" && f.type !== "radio");

/** Validate `form` inline; submitting with errors focuses the first one instead. */
export function initValidation(form) {
  for (const field of checked(form)) {
    field.addEventListener("change", () => show(field, fieldError(field)));
  }
  // Capture phase: runs before forms.js marks the form as submitting.
  form.addEventListener("submit", (event) => {
    let first = null;
    for (const field of checked(form)) {
      const message = fieldError(field);
      show(field, message);
      if (message && !first) first = field;
    }
    if (first) {
      event.preventDefault();
      event.stopImmediatePropagation();
      first.focus();
    }
  }, true);
}
