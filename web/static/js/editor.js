// A <textarea> as a small code editor: Tab/Shift+Tab indent, Enter keeps indentation,
// Esc then Tab leaves it (so keyboard users are never trapped), a line can be highlighted.

const INDENT = "    ";

function replace(area, start, end, text, selStart, selEnd) {
  area.setRangeText(text, start, end, "end");
  if (selStart !== undefined) area.setSelectionRange(selStart, selEnd ?? selStart);
  area.dispatchEvent(new Event("input", { bubbles: true }));
}

function lineStart(text, pos) {
  return text.lastIndexOf("\n", pos - 1) + 1;
}

function indent(area, outdent) {
  const { value, selectionStart: s, selectionEnd: e } = area;
  const from = lineStart(value, s);
  const block = value.slice(from, e);
  if (!outdent && s === e) return replace(area, s, e, INDENT);
  const lines = block.split("\n");
  const changed = lines.map((l) => (outdent ? l.replace(/^ {1,4}|^\t/, "") : INDENT + l));
  const first = changed[0].length - lines[0].length;
  const text = changed.join("\n");
  replace(area, from, e, text, Math.max(from, s + first), from + text.length);
}

/** Attach editor keys to a textarea. */
export function attachEditor(area) {
  let escaped = false;
  area.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      escaped = true;
      return;
    }
    if (event.key === "Tab" && !escaped && !event.ctrlKey && !event.altKey && !event.metaKey) {
      event.preventDefault();
      indent(area, event.shiftKey);
    } else if (event.key === "Enter" && !event.shiftKey && !event.ctrlKey) {
      const { value, selectionStart: s, selectionEnd: e } = area;
      const line = value.slice(lineStart(value, s), s);
      const lead = line.match(/^\s*/)[0] + (/:\s*$/.test(line) ? INDENT : "");
      event.preventDefault();
      replace(area, s, e, "\n" + lead);
    }
    escaped = false;
  });
  area.addEventListener("blur", () => { escaped = false; });
}

/** Select line `n` (1-based) and scroll it into view. */
export function selectLine(area, n) {
  const lines = area.value.split("\n");
  if (!(n >= 1 && n <= lines.length)) return;
  const start = lines.slice(0, n - 1).reduce((sum, l) => sum + l.length + 1, 0);
  area.setSelectionRange(start, start + lines[n - 1].length);
  const lineHeight = parseFloat(getComputedStyle(area).lineHeight) || 18;
  area.scrollTop = Math.max(0, (n - 3) * lineHeight);
}
