// New-dataset form: "See example" resizes the sample photo with the form's image settings.
import { csrfHeaders } from "./util.js";

const button = document.getElementById("resize-example-button");
const output = document.getElementById("resize-example-output");

function value(name) {
  const form = button.form;
  const checked = form.querySelector(`[name="${name}"]:checked`);
  return (checked || form.elements[name])?.value ?? "";
}

async function showExample() {
  const body = new URLSearchParams({
    width: value("resize_width"),
    height: value("resize_height"),
    channels: value("resize_channels"),
    resize_mode: value("resize_mode"),
    encoding: value("encoding"),
  });
  button.disabled = true;
  output.setAttribute("aria-busy", "true");
  try {
    const response = await fetch("/datasets/images/resize-example", {
      method: "POST",
      body,
      headers: csrfHeaders({ Accept: "application/json" }),
    });
    const data = await response.json();
    if (!response.ok) {
      const messages = Object.values(data.errors || {}).flat();
      output.replaceChildren(Object.assign(document.createElement("p"), {
        className: "field-errors", textContent: messages.join(" ") || `Error ${response.status}`,
      }));
      return;
    }
    const img = Object.assign(document.createElement("img"), {
      src: data.image, width: data.width, height: data.height,
      alt: `Sample photo resized to ${data.width}×${data.height}`,
    });
    const caption = document.createElement("figcaption");
    caption.textContent = `${data.width}×${data.height}, ${data.encoded_size.toLocaleString()} bytes per image`
      + (data.scaled_for_display ? " (shown as a smaller preview)" : "");
    const figure = Object.assign(document.createElement("figure"), { className: "resize-example-result" });
    figure.replaceChildren(img, caption);
    output.replaceChildren(figure);
  } catch (error) {
    output.textContent = "The example could not be made; try again.";
    console.warn(error);
  } finally {
    button.disabled = false;
    output.removeAttribute("aria-busy");
  }
}

button?.addEventListener("click", showExample);
