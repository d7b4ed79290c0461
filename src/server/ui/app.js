// The Skein dashboard: a few pages over the HTTP API, updated live by its
// Server-Sent Events. Plain JavaScript, no build step. The token the user
// logs in with is kept in sessionStorage and sent as a bearer token.
"use strict";

const main = document.getElementById("main");
let token = sessionStorage.getItem("skein-token");
let me = null;
let streams = [];
/** Increases on every navigation: a refresh started for an older page must not draw. */
let generation = 0;

/** Runs `render` later (coalescing bursts of events), unless the user has moved to another page. */
function refresher(render) {
  const mine = generation;
  let pending = false;
  return () => {
    if (pending || mine !== generation) return;
    pending = true;
    setTimeout(() => {
      if (mine !== generation) return;
      render().catch(showError).finally(() => (pending = false));
    }, 300);
  };
}

const esc = (v) => String(v ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
const status = (s) => `<span class="status s-${esc(s)}">${esc(s)}</span>`;
const time = (t) => (t ? new Date(t).toLocaleTimeString() : "-");

async function api(path, options = {}) {
  const res = await fetch(path, {
    ...options,
    headers: { authorization: `Bearer ${token}`, ...(options.body ? { "content-type": "application/json" } : {}) },
  });
  const body = res.headers.get("content-type")?.includes("json") ? await res.json() : await res.text();
  if (!res.ok) throw new Error(body && body.message ? `${res.status}: ${body.message}` : `${res.status}`);
  return body;
}

/**
 * Opens an event stream for the current page; closed when the page changes.
 * The token never goes in a URL: each connection asks for a short-lived
 * stream ticket, and one refused later (an expired ticket) reconnects with a
 * new ticket from the last event it saw.
 */
function stream(path, handlers) {
  const page = generation;
  let last = "";
  const open = async () => {
    if (page !== generation) return;
    const { ticket } = await api("/api/stream-tickets", { method: "POST" });
    if (page !== generation) return;
    const params = new URLSearchParams({ ticket, ...(last ? { lastEventId: last } : {}) });
    const source = new EventSource(`${path}${path.includes("?") ? "&" : "?"}${params}`);
    for (const [event, fn] of Object.entries(handlers)) source.addEventListener(event, (e) => {
      last = e.lastEventId || last;
      fn(JSON.parse(e.data));
    });
    source.addEventListener("error", () => {
      if (source.readyState !== EventSource.CLOSED) return; // the browser retries by itself
      streams = streams.filter((s) => s !== source);
      setTimeout(() => void open().catch(() => undefined), 2000);
    });
    streams.push(source);
  };
  void open().catch(showError);
}

function closeStreams() {
  for (const s of streams) s.close();
  streams = [];
}

function showError(error) {
  const box = document.createElement("div");
  box.className = "error";
  box.textContent = String(error.message || error);
  main.prepend(box);
}

function loginPage(message) {
  document.getElementById("nav").hidden = true;
  document.getElementById("logout").hidden = true;
  document.getElementById("who").textContent = "";
  main.innerHTML = `<form class="login" id="login">
    <h1>Log in</h1>
    <p class="muted">Paste the admin token or a tenant token (<code>skein tokens create --tenant orgA</code>).</p>
    <input id="token" type="password" autocomplete="off" placeholder="token">
    <button class="primary" type="submit">Log in</button>
    ${message ? `<p class="error">${esc(message)}</p>` : ""}
  </form>`;
  document.getElementById("login").addEventListener("submit", async (e) => {
    e.preventDefault();
    token = document.getElementById("token").value.trim();
    try {
      me = await api("/api/me");
      sessionStorage.setItem("skein-token", token);
      location.hash = "#/";
      route();
    } catch (error) {
      token = null;
      loginPage(`Refused: ${error.message}`);
    }
  });
}

// ---- pages -----------------------------------------------------------------

async function overviewPage() {
  const mine = generation;
  const render = async () => {
    const o = await api("/api/overview");
    const max = Math.max(1, ...o.perMinute.map((m) => m.completed + m.failed));
    const bars = o.perMinute
      .map((m, i) => `<rect x="${i * 12}" y="${80 - (m.completed / max) * 80}" width="10" height="${(m.completed / max) * 80}" fill="#22c55e"><title>${time(m.minute)}: ${m.completed} completed</title></rect>` +
        `<rect x="${i * 12}" y="${80 - ((m.completed + m.failed) / max) * 80}" width="10" height="${(m.failed / max) * 80}" fill="#ef4444"></rect>`)
      .join("");
    const failures = await api("/api/jobs?status=failed&limit=10");
    if (mine !== generation) return;
    main.innerHTML = `<h1>Overview${o.tenant ? ` — tenant ${esc(o.tenant)}` : ""}</h1>
      <div class="cards">${["pending", "running", "completed", "failed", "cancelled"].map((s) => `<div class="card" data-status="${s}"><div class="muted">${s}</div><div class="n">${o.counts[s] ?? 0}</div></div>`).join("")}
        <div class="card"><div class="muted">completed in the last minutes</div><div class="n">${o.completedLastMinute}</div></div></div>
      <h2>Throughput, last hour (per minute)</h2>
      <svg width="${Math.max(200, o.perMinute.length * 12)}" height="84">${bars}</svg>
      <h2>Recent failures</h2>${jobTable(failures)}`;
  };
  await render();
  stream("/api/stream", { job: refresher(render) });
}

function jobTable(jobs) {
  if (!jobs.length) return `<p class="muted">None.</p>`;
  return `<table><tr><th>job</th><th>status</th><th>tenant</th><th>queue</th><th>attempts</th><th>updated</th><th>error</th></tr>
    ${jobs.map((j) => `<tr data-job="${esc(j.id)}"><td><a href="#/job/${encodeURIComponent(j.id)}">${esc(j.name)}</a><div class="muted">${esc(j.id)}</div></td>
      <td>${status(j.status)}</td><td>${esc(j.tenant ?? "-")}</td><td>${esc(j.queue)}</td><td>${j.attempts}</td>
      <td>${time(j.completedAt ?? j.updatedAt)}</td><td>${esc((j.errorMessage ?? "").slice(0, 80))}</td></tr>`).join("")}</table>`;
}

async function jobsPage(params) {
  const mine = generation;
  const q = new URLSearchParams(params);
  const render = async () => {
    const jobs = await api(`/api/jobs?${q.toString()}`);
    if (mine !== generation) return;
    main.innerHTML = `<h1>Jobs</h1>
      <form class="row" id="filters">
        <select name="status"><option value="">any status</option>${["pending", "running", "completed", "failed", "cancelled"].map((s) => `<option ${q.get("status") === s ? "selected" : ""}>${s}</option>`).join("")}</select>
        <input name="queue" placeholder="queue" value="${esc(q.get("queue") ?? "")}">
        ${me.role === "admin" ? `<input name="tenant" placeholder="tenant" value="${esc(q.get("tenant") ?? "")}">` : ""}
        <button type="submit">Filter</button>
      </form>${jobTable(jobs)}`;
    document.getElementById("filters").addEventListener("submit", (e) => {
      e.preventDefault();
      const next = new URLSearchParams();
      for (const [k, v] of new FormData(e.target)) if (v) next.set(k, String(v));
      location.hash = `#/jobs?${next.toString()}`;
    });
  };
  await render();
  stream("/api/stream", { job: refresher(render) });
}

function drawGraph(graph, current) {
  // Layered layout: a job's layer is one more than its deepest dependency's.
  const layer = new Map();
  const deps = new Map(graph.nodes.map((n) => [n.id, []]));
  for (const e of graph.edges) deps.get(e.to)?.push(e.from);
  const depth = (id, seen = new Set()) => {
    if (layer.has(id)) return layer.get(id);
    if (seen.has(id)) return 0;
    seen.add(id);
    const d = Math.max(-1, ...(deps.get(id) ?? []).map((p) => depth(p, seen))) + 1;
    layer.set(id, d);
    return d;
  };
  graph.nodes.forEach((n) => depth(n.id));
  const columns = new Map();
  for (const n of graph.nodes) {
    const l = layer.get(n.id);
    columns.set(l, [...(columns.get(l) ?? []), n]);
  }
  const pos = new Map();
  for (const [l, nodes] of columns) nodes.forEach((n, i) => pos.set(n.id, { x: 20 + l * 190, y: 20 + i * 54 }));
  const colors = { pending: "#cbd5e1", running: "#60a5fa", completed: "#4ade80", failed: "#f87171", cancelled: "#d1d5db" };
  const width = 40 + Math.max(...[...columns.keys()], 0) * 190 + 160;
  const height = 40 + Math.max(...[...columns.values()].map((c) => c.length), 1) * 54;
  const lines = graph.edges
    .filter((e) => pos.has(e.from) && pos.has(e.to))
    .map((e) => {
      const a = pos.get(e.from);
      const b = pos.get(e.to);
      return `<line x1="${a.x + 150}" y1="${a.y + 18}" x2="${b.x}" y2="${b.y + 18}" stroke="#94a3b8" ${e.onFailure !== "cancel" ? 'stroke-dasharray="4 3"' : ""} marker-end="url(#arrow)"><title>on failure: ${esc(e.onFailure)}</title></line>`;
    })
    .join("");
  const boxes = graph.nodes
    .map((n) => {
      const p = pos.get(n.id);
      return `<a href="#/job/${encodeURIComponent(n.id)}"><g class="node" data-node="${esc(n.id)}" data-status="${esc(n.status)}"><rect x="${p.x}" y="${p.y}" width="150" height="36" rx="6" fill="${colors[n.status] ?? "#e5e7eb"}" stroke="${n.id === current ? "#1d4ed8" : "#64748b"}" stroke-width="${n.id === current ? 3 : 1}"></rect>
        <text x="${p.x + 8}" y="${p.y + 15}">${esc(n.name.slice(0, 22))}</text><text x="${p.x + 8}" y="${p.y + 29}" fill="#334155">${esc(n.status)}</text></g></a>`;
    })
    .join("");
  return `<svg id="graph" width="${width}" height="${height}"><defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" markerHeight="6" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#94a3b8"></path></marker></defs>${lines}${boxes}</svg>`;
}

async function jobPage(id) {
  const mine = generation;
  const render = async () => {
    const [job, events, graph, why] = await Promise.all([
      api(`/api/jobs/${encodeURIComponent(id)}`),
      api(`/api/jobs/${encodeURIComponent(id)}/events`),
      api(`/api/jobs/${encodeURIComponent(id)}/graph`),
      api(`/api/jobs/${encodeURIComponent(id)}/explain`),
    ]);
    const canRetry = job.status === "failed" || job.status === "cancelled";
    const canCancel = job.status === "pending" || job.status === "running";
    const logs = document.getElementById("logs")?.textContent ?? "";
    if (mine !== generation) return;
    main.innerHTML = `<h1>${esc(job.name)} ${status(job.status)}</h1>
      <div class="row">
        ${canRetry ? `<button class="primary" id="retry">Retry (with cancelled dependents)</button>` : ""}
        ${canCancel ? `<button id="cancel">Cancel (and everything downstream)</button>` : ""}
        <span class="muted">${esc(why?.summary ?? "")}</span>
      </div>
      <table><tr><th>id</th><td>${esc(job.id)}</td><th>type</th><td>${esc(job.jobType)}</td></tr>
        <tr><th>tenant</th><td>${esc(job.tenant ?? "-")}</td><th>queue</th><td>${esc(job.queue)}</td></tr>
        <tr><th>attempts</th><td>${job.attempts} (retries ${job.retryCount}/${job.maxRetries})</td><th>worker</th><td>${esc(job.lockedBy ?? "-")}</td></tr>
        <tr><th>parent</th><td>${job.parentId ? `<a href="#/job/${encodeURIComponent(job.parentId)}">${esc(job.parentId)}</a>` : "-"}</td><th>children</th><td>${(job.childIds ?? []).map((c) => `<a href="#/job/${encodeURIComponent(c)}">${esc(c)}</a>`).join(", ") || "-"}</td></tr>
        <tr><th>error</th><td colspan="3">${esc(job.errorMessage ?? "-")}</td></tr>
        <tr><th>result</th><td colspan="3"><code>${esc(JSON.stringify(job.result))}</code></td></tr></table>
      <h2>Dependency graph</h2>${drawGraph(graph, id)}
      <h2>Logs</h2><pre class="logs" id="logs">${esc(logs)}</pre>
      <h2>Events</h2><table id="events"><tr><th>at</th><th>event</th><th>attempt</th><th>worker</th><th>detail</th></tr>
        ${events.map((e) => `<tr><td>${time(e.at)}</td><td>${esc(e.event)}</td><td>${e.attempt ?? "-"}</td><td>${esc(e.workerId ?? "-")}</td><td>${esc(e.detail ? JSON.stringify(e.detail).slice(0, 100) : "")}</td></tr>`).join("")}</table>`;
    document.getElementById("retry")?.addEventListener("click", () => api(`/api/jobs/${encodeURIComponent(id)}/retry`, { method: "POST", body: JSON.stringify({ downstream: true }) }).then(render).catch(showError));
    document.getElementById("cancel")?.addEventListener("click", () => api(`/api/jobs/${encodeURIComponent(id)}/cancel`, { method: "POST", body: JSON.stringify({ cascade: true }) }).then(render).catch(showError));
  };
  await render();
  const refresh = refresher(render);
  stream(`/api/jobs/${encodeURIComponent(id)}/stream`, {
    job: refresh,
    log: (line) => {
      const el = document.getElementById("logs");
      if (el) el.textContent += `${time(line.at)} ${line.level} ${line.message}${line.fields ? " " + JSON.stringify(line.fields) : ""}\n`;
    },
  });
  stream("/api/stream", { job: refresh });
}

async function submitPage() {
  const mine = generation;
  const example = {
    jobs: [
      { id: `load-${Date.now().toString(36)}`, jobType: "agent", name: "load", payload: { agent_name: "noop" } },
      { id: `analyse-${Date.now().toString(36)}`, jobType: "agent", name: "analyse", payload: { agent_name: "noop" }, dependencies: [`load-${Date.now().toString(36)}`] },
    ],
  };
  if (mine !== generation) return;
  main.innerHTML = `<h1>Submit a graph</h1>
    <p class="muted">POST /api/graphs: jobs may depend on each other by id. A tenant token's jobs belong to its tenant.</p>
    <textarea id="graph-json">${esc(JSON.stringify(example, null, 2))}</textarea>
    <div class="row"><button class="primary" id="submit-graph">Submit</button></div><div id="submitted"></div>`;
  document.getElementById("submit-graph").addEventListener("click", async () => {
    try {
      const body = JSON.parse(document.getElementById("graph-json").value);
      const out = await api("/api/graphs", { method: "POST", body: JSON.stringify(body) });
      document.getElementById("submitted").innerHTML = `<h2>Created</h2>${jobTable(out.jobs)}`;
    } catch (error) {
      showError(error);
    }
  });
}

async function dlqPage() {
  const mine = generation;
  const render = async () => {
    const jobs = await api("/api/dlq");
    if (mine !== generation) return;
    main.innerHTML = `<h1>Dead letters</h1><div class="row"><button class="primary" id="replay-all" ${jobs.length ? "" : "disabled"}>Replay all</button></div>${jobTable(jobs)}`;
    document.getElementById("replay-all").addEventListener("click", () => api("/api/dlq/replay", { method: "POST", body: JSON.stringify({ all: true }) }).then(render).catch(showError));
  };
  await render();
}

async function workersPage() {
  const mine = generation;
  const workers = await api("/api/workers");
  if (mine !== generation) return;
  main.innerHTML = `<h1>Workers</h1><table><tr><th>id</th><th>host / pid</th><th>running / slots</th><th>queues</th><th>tags</th><th>last heartbeat</th><th>state</th></tr>
    ${workers.map((w) => `<tr><td>${esc(w.id)}</td><td>${esc(w.host)} / ${w.pid}</td><td>${w.running} / ${w.concurrency}</td><td>${esc((w.queues ?? ["(all)"]).join(", "))}</td><td>${esc(w.tags.join(", ") || "-")}</td><td>${time(w.last_heartbeat_at)}</td><td>${esc(w.status)}</td></tr>`).join("")}</table>`;
}

async function schedulesPage() {
  const mine = generation;
  const render = async () => {
    const list = await api("/api/schedules");
    if (mine !== generation) return;
    main.innerHTML = `<h1>Schedules</h1><table><tr><th>name</th><th>when</th><th>timezone</th><th>next run</th><th>last run</th><th></th></tr>
      ${list.map((s) => `<tr><td>${esc(s.name)}</td><td>${esc(s.cron ?? `every ${s.intervalSeconds}s`)}</td><td>${esc(s.timezone)}</td><td>${time(s.nextRunAt)}</td><td>${time(s.lastRunAt)}</td>
        <td><button data-toggle="${esc(s.name)}" data-paused="${s.paused}">${s.paused ? "Resume" : "Pause"}</button></td></tr>`).join("")}</table>`;
    for (const b of main.querySelectorAll("button[data-toggle]")) {
      b.addEventListener("click", () => api(`/api/schedules/${encodeURIComponent(b.dataset.toggle)}/${b.dataset.paused === "true" ? "resume" : "pause"}`, { method: "POST" }).then(render).catch(showError));
    }
  };
  await render();
}

async function limitsPage() {
  const mine = generation;
  const limits = await api("/api/rate-limits");
  const tokens = me.role === "admin" ? await api("/api/tokens") : [];
  if (mine !== generation) return;
  main.innerHTML = `<h1>Tenants and rate limits</h1>
    <h2>Rate limits</h2><table><tr><th>key</th><th>rate</th><th>burst</th><th>tokens now</th><th>paused until</th></tr>
    ${limits.map((l) => `<tr><td>${esc(l.key)}</td><td>${l.perSecond === null ? "-" : `${+l.perSecond.toFixed(3)}/s`}</td><td>${l.burst}</td><td>${l.tokens.toFixed(1)}</td><td>${time(l.pausedUntil)}</td></tr>`).join("")}</table>
    ${me.role === "admin" ? `<h2>Tenant tokens</h2><table><tr><th>id</th><th>tenant</th><th>name</th><th>created</th><th>last used</th><th>revoked</th></tr>
      ${tokens.map((t) => `<tr><td>${esc(t.id)}</td><td>${esc(t.tenant)}</td><td>${esc(t.name ?? "-")}</td><td>${time(t.createdAt)}</td><td>${time(t.lastUsedAt)}</td><td>${time(t.revokedAt)}</td></tr>`).join("")}</table>` : ""}`;
}

// ---- routing -----------------------------------------------------------------

async function route() {
  generation++;
  closeStreams();
  if (!token) return loginPage();
  if (!me) {
    try {
      me = await api("/api/me");
    } catch {
      token = null;
      sessionStorage.removeItem("skein-token");
      return loginPage("Your token was refused; log in again.");
    }
  }
  document.getElementById("nav").hidden = false;
  document.getElementById("logout").hidden = false;
  document.getElementById("who").textContent = me.role === "admin" ? "admin" : `tenant ${me.tenant}`;
  for (const a of document.querySelectorAll("nav a.admin")) a.hidden = me.role !== "admin";
  const [path, query] = location.hash.replace(/^#/, "").split("?");
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", a.getAttribute("href") === `#${path || "/"}`);
  main.innerHTML = `<p class="muted">Loading…</p>`;
  try {
    if (path.startsWith("/job/")) await jobPage(decodeURIComponent(path.slice(5)));
    else if (path === "/jobs") await jobsPage(query ?? "");
    else if (path === "/submit") await submitPage();
    else if (path === "/dlq") await dlqPage();
    else if (path === "/workers") await workersPage();
    else if (path === "/schedules") await schedulesPage();
    else if (path === "/limits") await limitsPage();
    else await overviewPage();
  } catch (error) {
    main.innerHTML = "";
    showError(error);
  }
}

document.getElementById("logout").addEventListener("click", () => {
  sessionStorage.removeItem("skein-token");
  token = null;
  me = null;
  closeStreams();
  loginPage();
});
window.addEventListener("hashchange", route);
route();
