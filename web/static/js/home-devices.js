// Home: DIGITS's "x of y GPUs available" (or CPU slots), linking to the cluster page.
import { el } from "./util.js";
import { deviceWord } from "./devices.js";

const spot = document.getElementById("devices");

async function refresh() {
  try {
    const response = await fetch("/api/v1/cluster");
    if (!response.ok) return;
    const c = await response.json();
    if (!c.total) {
      spot.hidden = true;
      return;
    }
    const waiting = (c.queue || []).length;
    const parts = [
      el("a", { href: "/cluster" }, `${c.available} of ${c.total} ${deviceWord(c.kind, c.total)} available`),
    ];
    // replaceChildren would print a null as the text "null"
    if (waiting) parts.push(el("span", {}, ` · ${waiting} job${waiting === 1 ? "" : "s"} waiting`));
    spot.replaceChildren(...parts);
    spot.hidden = false;
  } catch {
    /* keep the last text */
  }
}

if (spot) {
  refresh();
  setInterval(refresh, 3000);
}
