// @ts-check
// What every page of the dashboard shares: the session (token, who is logged
// in), the API client, live streams, and the page lifetime (a page's streams,
// timers and charts end when the user moves to another page).

/**
 * The element with this id (a missing one is a bug in the page's markup).
 * @param {string} id
 * @returns {HTMLElement}
 */
export function byId(id) {
  const el = document.getElementById(id);
  if (!el) throw new Error(`#${id} is missing`);
  return el;
}

export const main = byId("main");

/** The logged-in session; `generation` increases on every navigation. */
export const session = {
  /** @type {string | null} */
  token: sessionStorage.getItem("skein-token"),
  /** @type {Me | null} */
  me: null,
  generation: 0,
};

/** @type {Array<() => void>} what ends with the current page (streams, timers, charts). */
let cleanups = [];

/**
 * Runs `fn` when the current page ends.
 * @param {() => void} fn
 */
export function onLeave(fn) {
  cleanups.push(fn);
}

/** Ends the current page: closes its streams, stops its timers. */
export function leavePage() {
  const fns = cleanups;
  cleanups = [];
  for (const fn of fns) fn();
}

/**
 * Whether the page that started at `generation` is still the one shown.
 * @param {number} generation
 */
export const current = (generation) => generation === session.generation;

/**
 * Runs `render` later (coalescing bursts of events), unless the user has moved to another page.
 * @param {() => Promise<void>} render
 * @param {number} [delay]
 * @returns {() => void}
 */
export function refresher(render, delay = 300) {
  const mine = session.generation;
  let pending = false;
  return () => {
    if (pending || !current(mine)) return;
    pending = true;
    setTimeout(() => {
      if (!current(mine)) return;
      render().catch(showError).finally(() => (pending = false));
    }, delay);
  };
}

/**
 * Calls `fn` every `ms` while the page is shown.
 * @param {() => void} fn
 * @param {number} ms
 */
export function every(fn, ms) {
  const timer = setInterval(fn, ms);
  onLeave(() => clearInterval(timer));
}

/** @type {Record<string, string>} */
const ENTITIES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

/**
 * HTML-escapes a value.
 * @param {unknown} v
 */
export const esc = (v) => String(v ?? "").replace(/[&<>"']/g, (c) => ENTITIES[c] ?? c);

/** @param {string} s */
export const status = (s) => `<span class="status s-${esc(s)}">${esc(s)}</span>`;

/** @param {string | null | undefined} t */
export const time = (t) => (t ? new Date(t).toLocaleTimeString() : "-");

/** @param {string} id */
export const jobHref = (id) => `#/job/${encodeURIComponent(id)}`;

/**
 * Calls the JSON API with the session's token.
 * @template T
 * @param {string} path
 * @param {{ method?: string, body?: string }} [options]
 * @returns {Promise<T>}
 */
export async function api(path, options = {}) {
  const res = await fetch(path, {
    ...options,
    headers: { authorization: `Bearer ${session.token}`, ...(options.body ? { "content-type": "application/json" } : {}) },
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
 * @param {string} path
 * @param {{ job?: (e: StreamJob) => void, log?: (e: LogLine) => void }} handlers
 */
export function stream(path, handlers) {
  const page = session.generation;
  let last = "";
  /** @type {EventSource | null} */
  let source = null;
  onLeave(() => source?.close());
  const open = async () => {
    if (!current(page)) return;
    /** @type {{ ticket: string }} */
    const { ticket } = await api("/api/stream-tickets", { method: "POST" });
    if (!current(page)) return;
    const params = new URLSearchParams({ ticket, ...(last ? { lastEventId: last } : {}) });
    const es = new EventSource(`${path}${path.includes("?") ? "&" : "?"}${params}`);
    source = es;
    for (const [event, fn] of Object.entries(handlers)) {
      es.addEventListener(event, (e) => {
        last = e.lastEventId || last;
        fn(JSON.parse(e.data));
      });
    }
    es.addEventListener("error", () => {
      if (es.readyState !== EventSource.CLOSED) return; // the browser retries by itself
      setTimeout(() => void open().catch(() => undefined), 2000);
    });
  };
  void open().catch(showError);
}

/**
 * Shows an error above the page.
 * @param {unknown} error
 */
export function showError(error) {
  const box = document.createElement("div");
  box.className = "error";
  box.textContent = error instanceof Error ? error.message : String(error);
  main.prepend(box);
}

/**
 * A table of jobs, each linking to its page.
 * @param {Job[]} jobs
 */
export function jobTable(jobs) {
  if (!jobs.length) return `<p class="muted">None.</p>`;
  const row = (/** @type {Job} */ j) => `<tr data-job="${esc(j.id)}"><td><a href="${jobHref(j.id)}">${esc(j.name)}</a><div class="muted">${esc(j.id)}</div></td>
      <td>${status(j.status)}</td><td>${esc(j.tenant ?? "-")}</td><td>${esc(j.queue)}</td><td>${j.attempts}</td>
      <td>${time(j.completedAt ?? j.updatedAt)}</td><td>${esc((j.errorMessage ?? "").slice(0, 80))}</td></tr>`;
  return `<table><tr><th>job</th><th>status</th><th>tenant</th><th>queue</th><th>attempts</th><th>updated</th><th>error</th></tr>
    ${jobs.map(row).join("")}</table>`;
}
