// Every page: theme toggle (auto → light → dark, kept in localStorage) and local times.
import { applySizes, hydrateTimes } from "./util.js";

const KEY = "digits-theme";
const ORDER = ["auto", "light", "dark"];
const root = document.documentElement;
const button = document.getElementById("theme-toggle");

function current() {
  return root.dataset.theme || "auto";
}

function label() {
  if (!button) return;
  button.querySelector(".theme-name").textContent = current();
  button.setAttribute("aria-label", `Colour theme: ${current()}`);
}

function apply(theme) {
  if (theme === "auto") delete root.dataset.theme;
  else root.dataset.theme = theme;
  try {
    if (theme === "auto") localStorage.removeItem(KEY);
    else localStorage.setItem(KEY, theme);
  } catch { /* storage blocked: the choice lasts for this page only */ }
  label();
  document.dispatchEvent(new CustomEvent("themechange"));
}

button?.addEventListener("click", () => apply(ORDER[(ORDER.indexOf(current()) + 1) % ORDER.length]));
matchMedia("(prefers-color-scheme: dark)").addEventListener("change", () => {
  document.dispatchEvent(new CustomEvent("themechange"));
});
label();
hydrateTimes();
applySizes();
setInterval(() => hydrateTimes(), 30_000);

// The user menu (a <details>) closes like a menu: on Escape, giving focus back to its
// summary, and on a click or focus outside it.
const userMenu = document.querySelector(".user-menu");
if (userMenu) {
  const summary = userMenu.querySelector("summary");
  userMenu.addEventListener("keydown", (event) => {
    if (event.key !== "Escape" || !userMenu.open) return;
    event.preventDefault();
    userMenu.open = false;
    summary.focus();
  });
  document.addEventListener("click", (event) => {
    if (userMenu.open && !userMenu.contains(event.target)) userMenu.open = false;
  });
  document.addEventListener("focusin", (event) => {
    if (userMenu.open && !userMenu.contains(event.target)) userMenu.open = false;
  });
}
