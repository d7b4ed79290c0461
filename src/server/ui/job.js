// @ts-check
// A job's page: its details, its dependency graph (ancestors and descendants),
// its logs and events, all followed live; and the graph of many jobs at once.
import { drawable, structureKey } from "./graph.js";
import { graphOfJobs, showGraph } from "./graph-view.js";
import { api, byId, current, esc, jobHref, main, refresher, session, showError, status, stream, time } from "./lib.js";

/**
 * The heading, buttons and details of a job.
 * @param {Job} job
 * @param {Explanation | null} why
 */
function detailsMarkup(job, why) {
  const canRetry = job.status === "failed" || job.status === "cancelled";
  const canCancel = job.status === "pending" || job.status === "running";
  const link = (/** @type {string} */ id) => `<a href="${jobHref(id)}">${esc(id)}</a>`;
  return `<h1>${esc(job.name)} ${status(job.status)}</h1>
    <div class="row">
      ${canRetry ? `<button class="primary" id="retry">Retry (with cancelled dependents)</button>` : ""}
      ${canCancel ? `<button id="cancel">Cancel (and everything downstream)</button>` : ""}
      <span class="muted">${esc(why?.summary ?? "")}</span>
    </div>
    <table><tr><th>id</th><td>${esc(job.id)}</td><th>type</th><td>${esc(job.jobType)}</td></tr>
      <tr><th>tenant</th><td>${esc(job.tenant ?? "-")}</td><th>queue</th><td>${esc(job.queue)}</td></tr>
      <tr><th>attempts</th><td>${job.attempts} (retries ${job.retryCount}/${job.maxRetries})</td><th>worker</th><td>${esc(job.lockedBy ?? "-")}</td></tr>
      <tr><th>parent</th><td>${job.parentId ? `${link(job.parentId)} (key ${esc(job.delegationKey ?? "-")}${job.detached ? ", detached" : ""})` : "-"}</td><th>children</th><td>${(job.childIds ?? []).map(link).join(", ") || "-"}</td></tr>
      <tr><th>schedule</th><td colspan="3">${job.scheduleName ? `${esc(job.scheduleName)} (tick ${time(job.scheduledFor)})` : "-"}</td></tr>
      <tr><th>error</th><td colspan="3">${esc(job.errorMessage ?? "-")}</td></tr>
      <tr><th>result</th><td colspan="3"><code>${esc(JSON.stringify(job.result))}</code></td></tr></table>`;
}

/** The most jobs /api/jobs/:id/graph returns around a job. */
const GRAPH_API_LIMIT = 300;

/**
 * The graph around a job with the job itself in it: when there are more
 * jobs around it than the API returns, the job may be missing from them.
 * @param {Graph} graph
 * @param {Job} job
 * @returns {Graph}
 */
function withJob(graph, job) {
  if (graph.nodes.some((n) => n.id === job.id)) return graph;
  const deps = job.dependencies.map((d) => (typeof d === "string" ? { from: d, to: job.id, onFailure: "cancel" } : { from: d.id, to: job.id, onFailure: d.onFailure ?? "cancel" }));
  return { nodes: [...graph.nodes, { id: job.id, name: job.name, status: job.status }], edges: [...graph.edges, ...deps] };
}

/** @param {JobStep[]} steps */
const stepsMarkup = (steps) =>
  steps.length === 0
    ? `<p class="muted">No durable steps (ctx.step) stored.</p>`
    : `<table id="steps"><tr><th>stored</th><th>step</th><th>attempt</th><th>result</th></tr>
  ${steps.map((s) => `<tr><td>${time(s.createdAt)}</td><td>${esc(s.name)}</td><td>${s.attempt}</td><td><code>${esc(s.wakeAt ? `wakes at ${time(s.wakeAt)}` : JSON.stringify(s.result).slice(0, 100))}</code></td></tr>`).join("")}</table>`;

/** @param {JobEvent[]} events */
const eventsMarkup = (events) => `<table id="events"><tr><th>at</th><th>event</th><th>attempt</th><th>worker</th><th>detail</th></tr>
  ${events.map((e) => `<tr><td>${time(e.at)}</td><td>${esc(e.event)}</td><td>${e.attempt ?? "-"}</td><td>${esc(e.workerId ?? "-")}</td><td>${esc(e.detail ? JSON.stringify(e.detail).slice(0, 100) : "")}</td></tr>`).join("")}</table>`;

/**
 * Shows a job's page and follows it live.
 * @param {string} id
 */
export async function jobPage(id) {
  const mine = session.generation;
  const path = `/api/jobs/${encodeURIComponent(id)}`;
  main.innerHTML = `<div id="job-details"><p class="muted">Loading…</p></div><h2>Dependency graph</h2><p class="muted" id="graph-note"></p><div id="graph-box"></div>
    <h2>Steps</h2><div id="job-steps"></div><h2>Logs</h2><pre class="logs" id="logs"></pre><h2>Events</h2><div id="job-events"></div>`;
  /** @type {import("./graph-view.js").GraphView | null} */
  let view = null;
  const render = async () => {
    /** @type {[Job, JobEvent[], Graph, Explanation | null, JobStep[]]} */
    const [job, events, around, why, steps] = await Promise.all([api(path), api(`${path}/events`), api(`${path}/graph`), api(`${path}/explain`), api(`${path}/steps`)]);
    if (!current(mine)) return;
    const graph = withJob(around, job);
    byId("graph-note").textContent = around.nodes.length >= GRAPH_API_LIMIT ? `More jobs are connected to this one than the ${GRAPH_API_LIMIT} drawn here; the Graph page draws up to 1,000 jobs by queue or status.` : "";
    byId("job-details").innerHTML = detailsMarkup(job, why);
    byId("job-events").innerHTML = eventsMarkup(events);
    byId("job-steps").innerHTML = stepsMarkup(steps);
    document.getElementById("retry")?.addEventListener("click", () => api(`${path}/retry`, { method: "POST", body: JSON.stringify({ downstream: true }) }).then(render).catch(showError));
    document.getElementById("cancel")?.addEventListener("click", () => api(`${path}/cancel`, { method: "POST", body: JSON.stringify({ cascade: true }) }).then(render).catch(showError));
    if (view && view.key === structureKey(drawable(graph))) {
      for (const n of graph.nodes) view.setStatus(n.id, n.status);
    } else {
      view = await showGraph(byId("graph-box"), graph, { current: job.id });
    }
  };
  await render();
  if (!current(mine)) return;
  const refresh = refresher(render);
  stream(`${path}/stream`, {
    job: refresh,
    log: (line) => {
      const logs = document.getElementById("logs");
      if (logs) logs.textContent += `${time(line.at)} ${line.level} ${line.message}${line.fields ? " " + JSON.stringify(line.fields) : ""}\n`;
    },
  });
  stream("/api/stream", { job: refresh });
}

/**
 * The filter form of the graph page.
 * @param {URLSearchParams} q
 */
function graphFilters(q) {
  const statuses = ["pending", "running", "completed", "failed", "cancelled"];
  return `<form class="row" id="filters">
      <select name="status"><option value="">any status</option>${statuses.map((s) => `<option ${q.get("status") === s ? "selected" : ""}>${s}</option>`).join("")}</select>
      <input name="queue" placeholder="queue" value="${esc(q.get("queue") ?? "")}">
      ${session.me?.role === "admin" ? `<input name="tenant" placeholder="tenant" value="${esc(q.get("tenant") ?? "")}">` : ""}
      <select name="limit">${["100", "300", "1000"].map((n) => `<option ${(q.get("limit") ?? "300") === n ? "selected" : ""}>${n}</option>`).join("")}</select>
      <button type="submit">Draw</button>
    </form>`;
}

/**
 * The dependency graph of many jobs (the most recently changed that match a
 * filter, up to 1,000), drawn whole and followed live.
 * @param {string} params
 */
export async function graphPage(params) {
  const mine = session.generation;
  const q = new URLSearchParams(params);
  if (!q.get("limit")) q.set("limit", "300");
  main.innerHTML = `<h1>Job graph</h1>${graphFilters(q)}<div id="graph-box"></div><div class="row" id="graph-new" hidden></div>`;
  byId("filters").addEventListener("submit", (e) => {
    e.preventDefault();
    const next = new URLSearchParams();
    for (const [k, v] of new FormData(/** @type {HTMLFormElement} */ (e.target))) if (v) next.set(k, String(v));
    location.hash = `#/graph?${next.toString()}`;
  });
  /** @type {Job[]} */
  const jobs = await api(`/api/jobs?${q.toString()}`);
  if (!current(mine)) return;
  const view = await showGraph(byId("graph-box"), graphOfJobs(jobs), { height: Math.max(420, window.innerHeight - 230) });
  if (!current(mine)) return;
  let unseen = 0;
  stream("/api/stream", {
    job: (e) => {
      if (view.has(e.id)) return view.setStatus(e.id, e.status);
      unseen++;
      const box = byId("graph-new");
      box.hidden = false;
      box.innerHTML = `<span class="muted">${unseen} event(s) of jobs outside this drawing.</span> <button type="button" id="redraw">Redraw</button>`;
      byId("redraw").addEventListener("click", () => window.dispatchEvent(new HashChangeEvent("hashchange")));
    },
  });
}
