// @ts-check
// Job graphs laid out by ELK's layered algorithm (elkjs, in its web worker,
// so a 1,000-job layout never freezes the page) and drawn as SVG. Edges follow
// the polyline routes ELK computes between the layers, so none passes under a
// node and none lies along another; node colours come from style.css by status.
import { esc, jobHref } from "./lib.js";

const NODE_W = 168;
const NODE_H = 40;
const LABEL_CHARS = 24;

/** @typedef {{ x: number, y: number, w: number, h: number }} Box */
/** @typedef {{ x: number, y: number }} Point */
/**
 * A laid-out graph: node boxes and edge routes in SVG units.
 * @typedef {{ width: number, height: number, boxes: Map<string, Box>, routes: Array<{ edge: GraphEdge, points: Point[] }>, ms: number }} Layout
 */

/** @type {import("elkjs/lib/elk-api").ELK | null} */
let elk = null;
/** Layouts by graph structure: a status change redraws colours, never the layout. @type {Map<string, Promise<Layout>>} */
const cache = new Map();

/**
 * The graph's structure (its nodes and edges, not their statuses), as a cache key.
 * @param {Graph} graph
 */
export function structureKey(graph) {
  const nodes = graph.nodes.map((n) => n.id).sort();
  const edges = graph.edges.map((e) => `${e.from}\u0000${e.to}\u0000${e.onFailure}`).sort();
  return JSON.stringify([nodes, edges]);
}

/**
 * The graph with only the edges whose both ends are drawn, each pair once.
 * @param {Graph} graph
 * @returns {Graph}
 */
export function drawable(graph) {
  const ids = new Set(graph.nodes.map((n) => n.id));
  const seen = new Set();
  const edges = graph.edges.filter((e) => {
    const key = `${e.from}\u0000${e.to}`;
    if (!ids.has(e.from) || !ids.has(e.to) || e.from === e.to || seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  return { nodes: graph.nodes, edges };
}

/**
 * Lays the graph out left to right (dependencies before their dependents).
 * @param {Graph} graph a {@link drawable} graph
 * @returns {Promise<Layout>}
 */
export function layout(graph) {
  const key = structureKey(graph);
  const known = cache.get(key);
  if (known) return known;
  const result = runLayout(graph);
  if (cache.size >= 8) cache.delete(/** @type {string} */ (cache.keys().next().value));
  cache.set(key, result);
  result.catch(() => cache.delete(key));
  return result;
}

/**
 * @param {Graph} graph
 * @returns {Promise<Layout>}
 */
async function runLayout(graph) {
  elk ??= new ELK({ workerUrl: "/ui/vendor/elk-worker.min.js" });
  const started = performance.now();
  /** @type {import("elkjs/lib/elk-api").ElkNode} */
  const input = {
    id: "root",
    layoutOptions: {
      "elk.algorithm": "layered",
      "elk.direction": "RIGHT",
      "elk.edgeRouting": "POLYLINE",
      "elk.spacing.nodeNode": "14",
      "elk.layered.spacing.nodeNodeBetweenLayers": "56",
      "elk.spacing.edgeNode": "10",
      "elk.padding": "[top=12,left=12,bottom=12,right=12]",
    },
    children: graph.nodes.map((n) => ({ id: n.id, width: NODE_W, height: NODE_H })),
    edges: graph.edges.map((e, i) => ({ id: `e${i}`, sources: [e.from], targets: [e.to] })),
  };
  const laid = await elk.layout(input);
  /** @type {Map<string, Box>} */
  const boxes = new Map();
  for (const c of laid.children ?? []) boxes.set(c.id, { x: c.x ?? 0, y: c.y ?? 0, w: c.width ?? NODE_W, h: c.height ?? NODE_H });
  const routes = (laid.edges ?? []).map((e) => {
    const s = e.sections?.[0];
    const points = s ? [s.startPoint, ...(s.bendPoints ?? []), s.endPoint] : [];
    return { edge: graph.edges[Number(e.id.slice(1))], points };
  });
  return { width: laid.width ?? 0, height: laid.height ?? 0, boxes, routes, ms: Math.round(performance.now() - started) };
}

/**
 * A name cut to fit its box.
 * @param {string} name
 */
export const truncate = (name) => (name.length > LABEL_CHARS ? `${name.slice(0, LABEL_CHARS - 1)}…` : name);

/** @param {number} v */
const r1 = (v) => Math.round(v * 10) / 10;

/**
 * @param {{ edge: GraphEdge, points: Point[] }} route
 */
function edgeMarkup({ edge, points }) {
  const d = points.map((p, i) => `${i ? "L" : "M"}${r1(p.x)},${r1(p.y)}`).join(" ");
  const soft = edge.onFailure !== "cancel" ? " soft" : "";
  return `<path class="edge${soft}" d="${d}" data-from="${esc(edge.from)}" data-to="${esc(edge.to)}" marker-end="url(#arrow)"><title>${esc(edge.from)} → ${esc(edge.to)} (on failure: ${esc(edge.onFailure)})</title></path>`;
}

/**
 * @param {GraphNode} node
 * @param {Box} box
 * @param {boolean} isCurrent
 */
function nodeMarkup(node, box, isCurrent) {
  const { x, y, w, h } = box;
  return `<a href="${jobHref(node.id)}"><g class="node${isCurrent ? " current" : ""}" data-node="${esc(node.id)}" data-status="${esc(node.status)}">` +
    `<rect x="${r1(x)}" y="${r1(y)}" width="${w}" height="${h}" rx="6"></rect>` +
    `<text class="name" x="${r1(x + 8)}" y="${r1(y + 16)}">${esc(truncate(node.name))}</text>` +
    `<text class="state" x="${r1(x + 8)}" y="${r1(y + 31)}">${esc(node.status)}</text>` +
    `<title>${esc(node.name)}\n${esc(node.id)}\n${esc(node.status)}</title></g></a>`;
}

/**
 * The SVG markup of a laid-out graph (its viewBox is set by the pan and zoom).
 * @param {Graph} graph
 * @param {Layout} laid
 * @param {string | undefined} currentId the job whose page this is, outlined
 */
export function graphMarkup(graph, laid, currentId) {
  const edges = laid.routes.filter((r) => r.points.length > 1).map(edgeMarkup).join("");
  const nodes = graph.nodes.map((n) => nodeMarkup(n, laid.boxes.get(n.id) ?? { x: 0, y: 0, w: NODE_W, h: NODE_H }, n.id === currentId)).join("");
  return `<svg id="graph" class="graph" xmlns="http://www.w3.org/2000/svg" data-nodes="${graph.nodes.length}" data-edges="${laid.routes.length}">` +
    `<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerUnits="userSpaceOnUse" markerWidth="9" markerHeight="9" orient="auto"><path class="arrowhead" d="M0,0 L10,5 L0,10 z"></path></marker></defs>` +
    `<g class="edges">${edges}</g><g class="nodes">${nodes}</g></svg>`;
}
