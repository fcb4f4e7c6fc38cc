// Draw a network graph ({nodes:[{id,name,op,shape,params}], edges:[[from,to]]}) as SVG, laid out by dagre.
import dagre from "dagre";

const SVG = "http://www.w3.org/2000/svg";
const LINE = 16;      // px per text line
const CHAR = { op: 7.6, detail: 6.9 };  // average glyph widths at the CSS font sizes
const PAD = 10;

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  node.append(...children);
  return node;
}

/** "1,234,567" — parameter counts read better grouped. */
export const fmtCount = (n) => Number(n || 0).toLocaleString("en-US");

/** The text lines of one node: operator, name, output shape, parameter count. */
export function nodeLines(node) {
  // MXNet calls a graph input's operator "null".
  const op = node.op === "null" ? "Input" : node.op || "?";
  const lines = [{ cls: "op", text: op }];
  if (node.name && node.name !== op) lines.push({ cls: "detail", text: node.name });
  if (node.shape?.length) lines.push({ cls: "detail", text: node.shape.join("×") });
  if (node.params) lines.push({ cls: "detail", text: `${fmtCount(node.params)} params` });
  return lines;
}

/** Lay the graph out top to bottom; returns dagre's graph with x, y, width, height set. */
export function layout(graph) {
  const g = new dagre.graphlib.Graph();
  g.setGraph({ rankdir: "TB", nodesep: 24, ranksep: 30, marginx: 12, marginy: 12 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const node of graph.nodes || []) {
    const lines = nodeLines(node);
    const width = Math.max(...lines.map((l) => l.text.length * CHAR[l.cls])) + 2 * PAD;
    g.setNode(String(node.id), { node, lines, width: Math.max(80, width), height: lines.length * LINE + PAD });
  }
  for (const [from, to] of graph.edges || []) {
    if (g.hasNode(String(from)) && g.hasNode(String(to))) g.setEdge(String(from), String(to));
  }
  dagre.layout(g);
  return g;
}

/** Replace the container's content with the drawn graph. */
export function drawGraph(container, graph) {
  const g = layout(graph);
  const { width = 0, height = 0 } = g.graph();
  const count = g.nodeCount();
  const root = svg("svg", {
    width: Math.ceil(width), height: Math.ceil(height), viewBox: `0 0 ${Math.ceil(width)} ${Math.ceil(height)}`,
    role: "img", "aria-label": `${count} layers, ${fmtCount(graph.total_params)} parameters`,
  });
  root.append(svg("defs", {}, svg("marker", {
    id: "graph-arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7,
    orient: "auto-start-reverse",
  }, svg("path", { d: "M0,0 L10,5 L0,10 z", class: "graph-arrow" }))));
  for (const e of g.edges()) {
    const points = g.edge(e).points || [];
    const d = points.map((p, i) => `${i ? "L" : "M"}${p.x.toFixed(1)},${p.y.toFixed(1)}`).join(" ");
    root.append(svg("path", { d, class: "graph-edge", "marker-end": "url(#graph-arrow)" }));
  }
  for (const id of g.nodes()) {
    const { x, y, width: w, height: h, lines, node } = g.node(id);
    const group = svg("g", { class: "graph-node", transform: `translate(${x - w / 2},${y - h / 2})`,
      "data-op": node.op || "" });
    group.append(svg("title", {}, lines.map((l) => l.text).join(", ")));
    group.append(svg("rect", { width: w, height: h, rx: 6 }));
    lines.forEach((line, i) => {
      group.append(svg("text", { x: PAD, y: PAD / 2 + LINE * (i + 0.75), class: line.cls }, line.text));
    });
    root.append(group);
  }
  container.replaceChildren(root);
  return { width, height, count };
}
