// Classify Many page: click a confusion-matrix cell to list its images; sortable results table.
const $ = (id) => document.getElementById(id);
const table = $("results");
const body = table?.tBodies[0];

function filterRows(truth, pred) {
  for (const row of body.rows) {
    row.hidden = truth !== null && (row.dataset.truth !== truth || row.dataset.pred !== pred);
  }
  $("results-filter").hidden = truth === null;
  if (truth !== null) $("filter-text").textContent = `ground truth “${truth}”, predicted “${pred}”`;
  for (const cell of document.querySelectorAll("#confusion .cell")) {
    cell.setAttribute("aria-pressed", String(cell.dataset.truth === truth && cell.dataset.pred === pred));
  }
}

document.querySelectorAll("#confusion .cell").forEach((cell) =>
  cell.addEventListener("click", () => {
    filterRows(cell.dataset.truth, cell.dataset.pred);
    $("results-heading").scrollIntoView({ behavior: "smooth", block: "start" });
  }),
);
$("filter-clear")?.addEventListener("click", () => filterRows(null, null));

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
