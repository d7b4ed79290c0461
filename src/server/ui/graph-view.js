// @ts-check
// A job graph on a page: laid out, drawn, pannable and zoomable, with Fit,
// zoom buttons and a finder; statuses change in place as events arrive.
import { drawable, graphMarkup, layout, structureKey } from "./graph.js";
import { onLeave } from "./lib.js";
import { panZoom } from "./panzoom.js";

/**
 * A drawn graph: its structure key, and status updates that need no new layout.
 * @typedef {{ key: string, has: (id: string) => boolean, setStatus: (id: string, status: string) => void }} GraphView
 */

/**
 * The graph of a list of jobs: their dependencies on one another.
 * @param {Job[]} jobs
 * @returns {Graph}
 */
export function graphOfJobs(jobs) {
  return {
    nodes: jobs.map((j) => ({ id: j.id, name: j.name, status: j.status })),
    edges: jobs.flatMap((j) => j.dependencies.map((d) => (typeof d === "string" ? { from: d, to: j.id, onFailure: "cancel" } : { from: d.id, to: j.id, onFailure: d.onFailure ?? "cancel" }))),
  };
}

/**
 * The tools above a graph.
 * @param {number} nodes
 * @param {number} edges
 * @param {number} ms
 */
const toolsMarkup = (nodes, edges, ms) => `<div class="row graph-tools">
    <button type="button" data-zoom="fit" title="Show the whole graph">Fit</button>
    <button type="button" data-zoom="in" title="Zoom in">+</button><button type="button" data-zoom="out" title="Zoom out">−</button>
    <form class="find"><input type="search" name="find" placeholder="find a job by name or id" aria-label="find a job"></form>
    <span class="muted" id="graph-info">${nodes} jobs · ${edges} dependencies · laid out in ${ms} ms · wheel to zoom, drag to pan, click a job to open it</span>
  </div>`;

/**
 * Wires the Fit, zoom and find tools.
 * @param {HTMLElement} container
 * @param {ReturnType<typeof panZoom>} pz
 * @param {Map<string, SVGGElement>} nodes
 * @param {Map<string, import("./graph.js").Box>} boxes
 */
function wireTools(container, pz, nodes, boxes) {
  for (const b of container.querySelectorAll("button[data-zoom]")) {
    const what = /** @type {HTMLElement} */ (b).dataset.zoom;
    b.addEventListener("click", () => (what === "fit" ? pz.fit() : pz.zoom(what === "in" ? 1.5 : 1 / 1.5)));
  }
  const form = /** @type {HTMLFormElement} */ (container.querySelector("form.find"));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const text = String(new FormData(form).get("find") ?? "").trim().toLowerCase();
    for (const g of container.querySelectorAll("g.node.found")) g.classList.remove("found");
    if (!text) return;
    const hit = [...nodes].find(([id, g]) => id.toLowerCase().includes(text) || (g.querySelector("title")?.textContent ?? "").toLowerCase().includes(text));
    const box = hit && boxes.get(hit[0]);
    if (!hit || !box) return;
    hit[1].classList.add("found");
    pz.centre({ x: box.x + box.w / 2, y: box.y + box.h / 2 }, Math.max(pz.scale(), 1));
  });
}

/**
 * Lays out and draws `graph` into `container`; a small graph is shown whole,
 * a large one whole too (labels come back as you zoom in), except on a job's
 * page, where a graph too large to read whole opens on that job.
 * @param {HTMLElement} container
 * @param {Graph} graph
 * @param {{ current?: string, height?: number }} [options]
 * @returns {Promise<GraphView>}
 */
export async function showGraph(container, graph, options = {}) {
  const g = drawable(graph);
  container.innerHTML = `<p class="muted" id="graph-info">Laying out ${g.nodes.length} jobs…</p>`;
  const laid = await layout(g);
  container.innerHTML = toolsMarkup(g.nodes.length, g.edges.length, laid.ms) + graphMarkup(g, laid, options.current);
  const svg = /** @type {SVGSVGElement} */ (container.querySelector("svg.graph"));
  svg.setAttribute("height", String(options.height ?? Math.round(Math.max(200, Math.min(laid.height + 40, 560)))));
  /** @type {Map<string, SVGGElement>} */
  const nodes = new Map();
  for (const el of svg.querySelectorAll("g.node")) nodes.set(/** @type {SVGGElement} */ (el).dataset.node ?? "", /** @type {SVGGElement} */ (el));
  const pz = panZoom(svg, laid);
  onLeave(pz.stop);
  const here = options.current ? laid.boxes.get(options.current) : undefined;
  if (here && pz.fitScale() < 0.45) pz.centre({ x: here.x + here.w / 2, y: here.y + here.h / 2 }, 1);
  else pz.fit();
  wireTools(container, pz, nodes, laid.boxes);
  return {
    key: structureKey(g),
    has: (id) => nodes.has(id),
    setStatus: (id, status) => {
      const el = nodes.get(id);
      if (!el || el.dataset.status === status) return;
      el.dataset.status = status;
      const state = el.querySelector("text.state");
      if (state) state.textContent = status;
      const title = el.querySelector("title");
      if (title) title.textContent = title.textContent?.replace(/[^\n]*$/, status) ?? status;
    },
  };
}
