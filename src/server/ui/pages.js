// @ts-check
// The list pages: jobs, submitting a graph, dead letters, schedules, and
// tenants with their rate limits.
import { api, byId, current, esc, jobTable, main, refresher, session, showError, stream, time } from "./lib.js";

const STATUSES = ["pending", "running", "completed", "failed", "cancelled"];

/**
 * Jobs matching a filter, refreshed live.
 * @param {string} params
 */
export async function jobsPage(params) {
  const mine = session.generation;
  const q = new URLSearchParams(params);
  const render = async () => {
    /** @type {Job[]} */
    const jobs = await api(`/api/jobs?${q.toString()}`);
    if (!current(mine)) return;
    main.innerHTML = `<h1>Jobs</h1>
      <form class="row" id="filters">
        <select name="status"><option value="">any status</option>${STATUSES.map((s) => `<option ${q.get("status") === s ? "selected" : ""}>${s}</option>`).join("")}</select>
        <input name="queue" placeholder="queue" value="${esc(q.get("queue") ?? "")}">
        ${session.me?.role === "admin" ? `<input name="tenant" placeholder="tenant" value="${esc(q.get("tenant") ?? "")}">` : ""}
        <button type="submit">Filter</button>
        <a href="#/graph?${esc(q.toString())}">Draw these as a graph</a>
      </form>${jobTable(jobs)}`;
    byId("filters").addEventListener("submit", (e) => {
      e.preventDefault();
      const next = new URLSearchParams();
      for (const [k, v] of new FormData(/** @type {HTMLFormElement} */ (e.target))) if (v) next.set(k, String(v));
      location.hash = `#/jobs?${next.toString()}`;
    });
  };
  await render();
  if (current(mine)) stream("/api/stream", { job: refresher(render) });
}

/** A form that submits a graph of jobs as JSON. */
export async function submitPage() {
  const stamp = Date.now().toString(36);
  const example = {
    jobs: [
      { id: `load-${stamp}`, jobType: "agent", name: "load", payload: { agent_name: "noop" } },
      { id: `analyse-${stamp}`, jobType: "agent", name: "analyse", payload: { agent_name: "noop" }, dependencies: [`load-${stamp}`] },
    ],
  };
  main.innerHTML = `<h1>Submit a graph</h1>
    <p class="muted">POST /api/graphs: jobs may depend on each other by id. A tenant token's jobs belong to its tenant.</p>
    <textarea id="graph-json">${esc(JSON.stringify(example, null, 2))}</textarea>
    <div class="row"><button class="primary" id="submit-graph">Submit</button></div><div id="submitted"></div>`;
  byId("submit-graph").addEventListener("click", async () => {
    try {
      const body = JSON.parse(/** @type {HTMLTextAreaElement} */ (byId("graph-json")).value);
      /** @type {{ jobs: Job[] }} */
      const out = await api("/api/graphs", { method: "POST", body: JSON.stringify(body) });
      byId("submitted").innerHTML = `<h2>Created</h2>${jobTable(out.jobs)}`;
    } catch (error) {
      showError(error);
    }
  });
}

/** Finally failed jobs, with a replay of all of them. */
export async function dlqPage() {
  const mine = session.generation;
  const render = async () => {
    /** @type {Job[]} */
    const jobs = await api("/api/dlq");
    if (!current(mine)) return;
    main.innerHTML = `<h1>Dead letters</h1><div class="row"><button class="primary" id="replay-all" ${jobs.length ? "" : "disabled"}>Replay all</button></div>${jobTable(jobs)}`;
    byId("replay-all").addEventListener("click", () => api("/api/dlq/replay", { method: "POST", body: JSON.stringify({ all: true }) }).then(render).catch(showError));
  };
  await render();
}

/** Schedules, each with pause or resume. */
export async function schedulesPage() {
  const mine = session.generation;
  const render = async () => {
    /** @type {Schedule[]} */
    const list = await api("/api/schedules");
    if (!current(mine)) return;
    main.innerHTML = `<h1>Schedules</h1><table><tr><th>name</th><th>when</th><th>timezone</th><th>next run</th><th>last run</th><th></th></tr>
      ${list.map((s) => `<tr><td>${esc(s.name)}</td><td>${esc(s.cron ?? `every ${s.intervalSeconds}s`)}</td><td>${esc(s.timezone)}</td><td>${time(s.nextRunAt)}</td><td>${time(s.lastRunAt)}</td>
        <td><button data-toggle="${esc(s.name)}" data-paused="${s.paused}">${s.paused ? "Resume" : "Pause"}</button></td></tr>`).join("")}</table>`;
    for (const el of main.querySelectorAll("button[data-toggle]")) {
      const b = /** @type {HTMLButtonElement} */ (el);
      const verb = b.dataset.paused === "true" ? "resume" : "pause";
      b.addEventListener("click", () => api(`/api/schedules/${encodeURIComponent(b.dataset.toggle ?? "")}/${verb}`, { method: "POST" }).then(render).catch(showError));
    }
  };
  await render();
}

/** Rate limits, and (for the admin) the tenants' tokens. */
export async function limitsPage() {
  const mine = session.generation;
  const admin = session.me?.role === "admin";
  /** @type {RateLimit[]} */
  const limits = await api("/api/rate-limits");
  /** @type {TenantToken[]} */
  const tokens = admin ? await api("/api/tokens") : [];
  if (!current(mine)) return;
  const rate = (/** @type {RateLimit} */ l) => (l.perSecond === null ? "-" : `${+l.perSecond.toFixed(3)}/s`);
  main.innerHTML = `<h1>Tenants and rate limits</h1>
    <h2>Rate limits</h2><table><tr><th>key</th><th>rate</th><th>burst</th><th>tokens now</th><th>paused until</th></tr>
    ${limits.map((l) => `<tr><td>${esc(l.key)}</td><td>${rate(l)}</td><td>${l.burst}</td><td>${l.tokens.toFixed(1)}</td><td>${time(l.pausedUntil)}</td></tr>`).join("")}</table>
    ${admin ? `<h2>Tenant tokens</h2><table><tr><th>id</th><th>tenant</th><th>name</th><th>created</th><th>last used</th><th>revoked</th></tr>
      ${tokens.map((t) => `<tr><td>${esc(t.id)}</td><td>${esc(t.tenant)}</td><td>${esc(t.name ?? "-")}</td><td>${time(t.createdAt)}</td><td>${time(t.lastUsedAt)}</td><td>${time(t.revokedAt)}</td></tr>`).join("")}</table>` : ""}`;
}
