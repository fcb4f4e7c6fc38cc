// Home list state kept in the URL (?q=&status=&owner=&group=&network=&tag=&sort=&dir=):
// parsing, the filter predicate and the sort order. Pure: no DOM beyond `location`.

export const FILTERS = ["status", "owner", "group", "network", "tag"];
export const SORTS = ["submitted", "name", "status", "owner", "progress", "best_val_accuracy",
  "final_train_loss", "duration"];
const STATUS_ORDER = ["Initialized", "Waiting", "Running", "Done", "Aborted", "Error"];

/** The state a query string describes (unknown sorts fall back to newest first). */
export function readState(search = location.search) {
  const params = new URLSearchParams(search);
  const state = { q: (params.get("q") || "").trim() };
  for (const name of FILTERS) state[name] = params.get(name) || "";
  state.sort = SORTS.includes(params.get("sort")) ? params.get("sort") : "submitted";
  state.dir = params.get("dir") === "asc" ? "asc" : "desc";
  return state;
}

/** The query string of a state, defaults left out so a plain home page stays "/". */
export function writeState(state) {
  const params = new URLSearchParams();
  if (state.q) params.set("q", state.q);
  for (const name of FILTERS) if (state[name]) params.set(name, state[name]);
  if (state.sort !== "submitted") params.set("sort", state.sort);
  if (state.dir !== "desc") params.set("dir", state.dir);
  const text = params.toString();
  return text ? `?${text}` : "";
}

/** A job's value for a filter or a sort key. */
export function field(data, key) {
  switch (key) {
    case "owner": return data.username || "";
    case "group": return data.group || "";
    case "network": return data.network || "";
    case "name": return (data.name || data.id || "").toLocaleLowerCase();
    default: return data[key];
  }
}

/** Whether a job passes the search box and every filter. */
export function matches(data, state) {
  if (state.q && !(data.name || data.id || "").toLocaleLowerCase().includes(state.q.toLocaleLowerCase())) {
    return false;
  }
  for (const name of FILTERS) {
    if (!state[name]) continue;
    if (name === "tag") {
      if (!(data.tags || []).some((t) => t.toLocaleLowerCase() === state.tag.toLocaleLowerCase())) return false;
    } else if (field(data, name) !== state[name]) {
      return false;
    }
  }
  return true;
}

function sortValue(data, key) {
  if (key === "status") return STATUS_ORDER.indexOf(data.status);
  if (key === "progress") return data.status === "Done" ? 1 : Number(data.progress);
  const value = field(data, key);
  if (value === null || value === undefined) return null;  // not measured yet: sorts last
  return typeof value === "string" ? value : Number(value);
}

/** A comparator for the state's sort; jobs without the value (no metric yet) go last either
 *  way, ties newest first (job ids begin with their creation time). */
export function comparator(state) {
  const sign = state.dir === "asc" ? 1 : -1;
  return (a, b) => {
    const x = sortValue(a, state.sort), y = sortValue(b, state.sort);
    const xMissing = x === undefined || x === null || x === "" || Number.isNaN(x);
    const yMissing = y === undefined || y === null || y === "" || Number.isNaN(y);
    if (xMissing !== yMissing) return xMissing ? 1 : -1;
    if (!xMissing && x !== y) {
      const order = typeof x === "string" ? x.localeCompare(y) : x - y;
      if (order) return sign * order;
    }
    return a.id < b.id ? 1 : a.id > b.id ? -1 : 0;
  };
}
