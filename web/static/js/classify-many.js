// Classify Many page: click a confusion-matrix cell to list its images, "misclassified only",
// a sortable results table, lazy thumbnails that vanish when their image is gone.
const $ = (id) => document.getElementById(id);
const table = $("results");
const body = table?.tBodies[0];
const wrongOnly = $("wrong-only");
let cellFilter = null; // {truth, pred} of the selected confusion cell

// The cells' shade is their share of the row (a custom property: no inline styles under CSP).
for (const cell of document.querySelectorAll("#confusion .cell")) {
  cell.style.setProperty("--share", cell.dataset.share);
}

function applyFilters() {
  if (!body) return;
  let shown = 0;
  for (const row of body.rows) {
    const inCell = !cellFilter || (row.dataset.truth === cellFilter.truth && row.dataset.pred === cellFilter.pred);
    row.hidden = !inCell || (wrongOnly?.checked && !row.classList.contains("wrong"));
    if (!row.hidden) shown += 1;
  }
  $("results-filter").hidden = cellFilter === null;
  if (cellFilter) $("filter-text").textContent = `ground truth “${cellFilter.truth}”, predicted “${cellFilter.pred}”`;
  for (const cell of document.querySelectorAll("#confusion .cell")) {
    const on = cellFilter !== null && cell.dataset.truth === cellFilter.truth && cell.dataset.pred === cellFilter.pred;
    cell.setAttribute("aria-pressed", String(on));
  }
  if ($("wrong-count")) {
    const wrong = body.querySelectorAll("tr.wrong").length;
    $("wrong-count").textContent = wrongOnly.checked
      ? `${shown} shown of ${wrong} misclassified`
      : `${wrong} of ${body.rows.length} misclassified`;
  }
}

document.querySelectorAll("#confusion .cell").forEach((cell) =>
  cell.addEventListener("click", () => {
    cellFilter = { truth: cell.dataset.truth, pred: cell.dataset.pred };
    applyFilters();
    $("results-heading").scrollIntoView({ behavior: "smooth", block: "start" });
  }),
);
$("filter-clear")?.addEventListener("click", () => {
  cellFilter = null;
  applyFilters();
});
wrongOnly?.addEventListener("change", applyFilters);

function sortBy(index, kind, header) {
  const ascending = header.getAttribute("aria-sort") !== "ascending";
  const value = (row) => row.cells[index].textContent.trim();
  const rows = [...body.rows].sort((a, b) => {
    const [x, y] = [value(a), value(b)];
    const order = kind === "num" ? (parseFloat(x) || 0) - (parseFloat(y) || 0) : x.localeCompare(y);
    return ascending ? order : -order;
  });
  for (const th of table.tHead.rows[0].cells) th.removeAttribute("aria-sort");
  header.setAttribute("aria-sort", ascending ? "ascending" : "descending");
  body.append(...rows);
}

table?.tHead.querySelectorAll("button[data-sort]").forEach((button) => {
  const header = button.closest("th");
  button.addEventListener("click", () => sortBy(header.cellIndex, button.dataset.sort, header));
});

// A thumbnail whose image is gone (or was never readable by the gateway) leaves an empty cell.
for (const img of document.querySelectorAll("#results td.thumb img")) {
  img.addEventListener("error", () => img.remove(), { once: true });
  if (img.complete && img.naturalWidth === 0 && img.currentSrc) img.remove();
}
if (wrongOnly) applyFilters();
