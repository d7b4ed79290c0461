// @ts-check
// The overview: counts by status, the throughput chart and recent failures,
// refreshed as job events arrive (and the chart each half minute, so its
// time axis moves on when nothing happens).
import { throughputChart } from "./chart.js";
import { api, byId, current, every, jobTable, main, refresher, session, showError, stream } from "./lib.js";

const STATUSES = ["pending", "running", "completed", "failed", "cancelled"];

/** @param {Overview} o */
const cardsMarkup = (o) =>
  STATUSES.map((s) => `<div class="card" data-status="${s}"><div class="muted">${s}</div><div class="n">${o.counts[s] ?? 0}</div></div>`).join("") +
  `<div class="card"><div class="muted">completed in the last minutes</div><div class="n">${o.completedLastMinute}</div></div>`;

/** Shows the overview and keeps it live. */
export async function overviewPage() {
  const mine = session.generation;
  main.innerHTML = `<h1 id="overview-title">Overview</h1><div class="cards" id="cards"></div>
    <h2>Throughput (jobs finished per minute)</h2><div id="throughput-box" class="panel"></div>
    <h2>Recent failures</h2><div id="failures"></div>`;
  const loadChart = throughputChart(byId("throughput-box"));
  const render = async () => {
    /** @type {[Overview, Job[]]} */
    const [o, failures] = await Promise.all([api("/api/overview"), api("/api/jobs?status=failed&limit=10")]);
    if (!current(mine)) return;
    byId("overview-title").textContent = `Overview${o.tenant ? ` — tenant ${o.tenant}` : ""}`;
    byId("cards").innerHTML = cardsMarkup(o);
    byId("failures").innerHTML = jobTable(failures);
  };
  await Promise.all([render(), loadChart()]);
  if (!current(mine)) return;
  const refresh = refresher(async () => {
    await Promise.all([render(), loadChart()]);
  }, 500);
  stream("/api/stream", { job: refresh });
  every(() => void loadChart().catch(showError), 30_000);
}
