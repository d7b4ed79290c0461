// @ts-check
// The queues page (admin): each queue's ready, running and waiting jobs, the
// oldest ready job's age, and a button to pause or resume it. Polled every
// two seconds and on every job event.
import { api, byId, current, esc, every, main, refresher, session, showError, stream } from "./lib.js";

/** @param {QueueInfo} q */
function rowMarkup(q) {
  const age = q.oldestReadySeconds === null ? "-" : `${q.oldestReadySeconds.toFixed(1)} s`;
  const action = q.paused ? "resume" : "pause";
  return `<tr data-queue="${esc(q.name)}" data-paused="${q.paused}">
    <td><strong>${esc(q.name)}</strong></td>
    <td>${q.paused ? `<span class="status s-cancelled">paused</span>` : `<span class="status s-running">active</span>`}</td>
    <td class="ready">${q.ready}</td><td>${q.running}</td><td>${q.waiting}</td><td>${age}</td>
    <td><button data-action="${action}" data-queue-name="${esc(q.name)}">${q.paused ? "Resume" : "Pause"}</button></td></tr>`;
}

/** Shows the queues and keeps them live. */
export async function queuesPage() {
  const mine = session.generation;
  main.innerHTML = `<h1>Queues</h1><p class="muted">A paused queue's jobs stay pending: no worker claims them until it is resumed; jobs already running finish.</p>
    <form class="row" id="pause-form"><input name="queue" placeholder="queue name" required><button class="primary" type="submit">Pause this queue</button></form>
    <table id="queues"><thead><tr><th>queue</th><th>state</th><th>ready</th><th>running</th><th>waiting</th><th>oldest ready</th><th></th></tr></thead><tbody></tbody></table>`;
  const render = async () => {
    /** @type {QueueInfo[]} */
    const queues = await api("/api/queues");
    if (!current(mine)) return;
    const tbody = /** @type {HTMLElement} */ (main.querySelector("#queues tbody"));
    tbody.innerHTML = queues.map(rowMarkup).join("") || `<tr><td colspan="7" class="muted">No queue has live jobs, and none is paused.</td></tr>`;
  };
  await render();
  if (!current(mine)) return;
  const refresh = refresher(render, 200);
  byId("queues").addEventListener("click", (event) => {
    const target = /** @type {HTMLElement} */ (event.target);
    const name = target.dataset.queueName;
    if (!target.dataset.action || name === undefined) return;
    void api(`/api/queues/${encodeURIComponent(name)}/${target.dataset.action}`, { method: "POST" }).then(refresh).catch(showError);
  });
  byId("pause-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = /** @type {HTMLInputElement} */ (byId("pause-form").querySelector("input"));
    void api(`/api/queues/${encodeURIComponent(input.value)}/pause`, { method: "POST" }).then(refresh).catch(showError);
  });
  every(refresh, 2000);
  stream("/api/stream", { job: refresh });
}
