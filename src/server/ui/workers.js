// @ts-check
// The live worker view (admin): each worker's state, its slots in use and the
// jobs it runs, and how long ago it last sent a heartbeat. Polled every two
// seconds and on every job event; the heartbeat ages tick each second.
import { api, byId, current, esc, every, jobHref, main, refresher, session, showError, status, stream, time } from "./lib.js";

/** A worker whose last heartbeat is older than this is shown as late (heartbeats come every 10 s by default). */
const LATE_SECONDS = 30;
const POLL_MS = 2000;

/**
 * "4 s ago", "3 min ago".
 * @param {number} seconds
 */
export function ago(seconds) {
  if (seconds < 60) return `${seconds} s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  return `${Math.floor(seconds / 3600)} h ago`;
}

/** @param {string} at */
const ageOf = (at) => Math.max(0, Math.round((Date.now() - Date.parse(at)) / 1000));

/**
 * A worker's row.
 * @param {WorkerRow} w
 * @param {Job[]} jobs the jobs it runs
 */
function rowMarkup(w, jobs) {
  const age = ageOf(w.last_heartbeat_at);
  const links = jobs.map((j) => `<a href="${jobHref(j.id)}" data-running-job="${esc(j.id)}">${esc(j.name)}</a>`).join(", ");
  return `<tr data-worker="${esc(w.id)}" data-status="${esc(w.status)}">
    <td><strong>${esc(w.id)}</strong><div class="muted">${esc(w.host)} / pid ${w.pid}</div></td>
    <td>${status(w.status)}</td>
    <td class="slots"><meter min="0" max="${w.concurrency}" value="${w.running}"></meter> <span class="running" data-running="${w.running}">${w.running} / ${w.concurrency}</span></td>
    <td class="jobs">${links || `<span class="muted">idle</span>`}</td>
    <td>${esc((w.queues ?? ["(all)"]).join(", "))}</td><td>${esc(w.tags.join(", ") || "-")}</td><td>${esc((w.tenants ?? ["(all)"]).join(", "))}</td>
    <td class="age${age > LATE_SECONDS ? " late" : ""}" data-heartbeat="${esc(w.last_heartbeat_at)}" data-age="${age}">${ago(age)}</td>
    <td>${time(w.started_at)}</td>
    <td class="controls">${controlsMarkup(w)}</td></tr>`;
}

/**
 * The operator's buttons for a worker: quiet, drain, resume, and its jobs at once.
 * @param {WorkerRow} w
 */
function controlsMarkup(w) {
  if (w.status === "stopping") return `<span class="muted">stopping</span>`;
  const button = (/** @type {string} */ verb, /** @type {string} */ label) => `<button data-action="${verb}" data-worker-id="${esc(w.id)}">${label}</button>`;
  const claimButtons = w.status === "running" ? button("quiet", "Quiet") + button("drain", "Drain") : button("resume", "Resume");
  return `${claimButtons}<input type="number" min="1" max="10000" value="${w.concurrency}" data-concurrency="${esc(w.id)}" aria-label="jobs at once">${button("concurrency", "Set slots")}`;
}

/**
 * Sends the operator's request of a clicked button.
 * @param {Event} event
 * @param {() => void} refresh
 */
async function onControl(event, refresh) {
  const target = /** @type {HTMLElement} */ (event.target);
  const verb = target.dataset.action;
  const id = target.dataset.workerId;
  if (!verb || !id) return;
  const path = `/api/workers/${encodeURIComponent(id)}`;
  if (verb === "concurrency") {
    const input = /** @type {HTMLInputElement | undefined} */ ([...main.querySelectorAll("input[data-concurrency]")].find((el) => /** @type {HTMLElement} */ (el).dataset.concurrency === id));
    await api(`${path}/concurrency`, { method: "PUT", body: JSON.stringify({ maxConcurrentJobs: Number(input?.value) }) });
  } else {
    await api(`${path}/${verb}`, { method: "POST" });
  }
  refresh();
}

/** Updates the heartbeat ages without asking the server. */
function tick() {
  for (const el of main.querySelectorAll("td.age[data-heartbeat]")) {
    const cell = /** @type {HTMLElement} */ (el);
    const age = ageOf(cell.dataset.heartbeat ?? "");
    cell.dataset.age = String(age);
    cell.textContent = ago(age);
    cell.classList.toggle("late", age > LATE_SECONDS);
  }
}

/** Shows the workers and keeps them live. */
export async function workersPage() {
  const mine = session.generation;
  main.innerHTML = `<h1>Workers</h1><p class="muted" id="workers-summary"></p>
    <table id="workers"><thead><tr><th>worker</th><th>state</th><th>running / slots</th><th>running jobs</th><th>queues</th><th>tags</th><th>tenants</th><th>last heartbeat</th><th>started</th><th>controls</th></tr></thead><tbody></tbody></table>`;
  const render = async () => {
    /** @type {[WorkerRow[], Job[]]} */
    const [workers, running] = await Promise.all([api("/api/workers"), api("/api/jobs?status=running&limit=1000")]);
    if (!current(mine)) return;
    const slots = workers.reduce((n, w) => n + w.concurrency, 0);
    const busy = workers.reduce((n, w) => n + w.running, 0);
    byId("workers-summary").textContent = `${workers.length} worker(s) · ${busy} of ${slots} slots running · updated ${new Date().toLocaleTimeString()}`;
    const tbody = /** @type {HTMLElement} */ (main.querySelector("#workers tbody"));
    tbody.innerHTML = workers.map((w) => rowMarkup(w, running.filter((j) => j.lockedBy === w.id))).join("") || `<tr><td colspan="10" class="muted">No worker is registered.</td></tr>`;
  };
  await render();
  if (!current(mine)) return;
  const refresh = refresher(render, 200);
  byId("workers").addEventListener("click", (event) => void onControl(event, refresh).catch(showError));
  every(refresh, POLL_MS);
  every(tick, 1000);
  stream("/api/stream", { job: refresh });
}
