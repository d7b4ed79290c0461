// @ts-check
// The throughput chart (uPlot): jobs completed and failed per minute over a
// chosen time range, from /api/throughput?minutes=, with a time axis and a
// jobs-per-minute axis. The tick labels the axes draw are also written on the
// chart element (data-ticks-x, data-ticks-y): the canvas has no text to read.
import { api, byId, esc, onLeave, showError } from "./lib.js";

/** The ranges offered, in minutes. */
export const RANGES = [
  { minutes: 15, label: "15 min" },
  { minutes: 60, label: "1 h" },
  { minutes: 360, label: "6 h" },
  { minutes: 1440, label: "24 h" },
];

const HEIGHT = 240;

/**
 * Per-minute series over the last `minutes` up to the current minute, with
 * zero for the minutes the API leaves out (none finished).
 * @param {ThroughputRow[]} rows
 * @param {number} minutes
 * @param {number} now milliseconds since the epoch
 * @returns {[number[], number[], number[]]} minute starts (seconds), completed, failed
 */
export function series(rows, minutes, now) {
  const end = Math.floor(now / 60_000) * 60;
  const start = end - (minutes - 1) * 60;
  /** @type {Map<number, ThroughputRow>} */
  const byMinute = new Map(rows.map((r) => [Math.floor(Date.parse(r.minute) / 1000), r]));
  /** @type {[number[], number[], number[]]} */
  const out = [[], [], []];
  for (let t = start; t <= end; t += 60) {
    const r = byMinute.get(t);
    out[0].push(t);
    out[1].push(r?.completed ?? 0);
    out[2].push(r?.failed ?? 0);
  }
  return out;
}

/**
 * The chart's options: a time axis, a jobs-per-minute axis from zero, stepped series.
 * @param {HTMLElement} el
 * @returns {import("uplot").Options}
 */
function options(el) {
  const hhmm = uPlot.fmtDate("{HH}:{mm}");
  const stepped = uPlot.paths.stepped?.({ align: 1 });
  /** @param {"x" | "y"} axis @param {string[]} labels */
  const drawn = (axis, labels) => {
    el.dataset[axis === "x" ? "ticksX" : "ticksY"] = labels.join("|");
    return labels;
  };
  return {
    width: Math.max(320, el.clientWidth),
    height: HEIGHT,
    cursor: { drag: { x: false, y: false } },
    scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(4, Math.ceil(max * 1.15))] } },
    series: [
      { label: "time", value: (_u, v) => (v == null ? "-" : hhmm(new Date(v * 1000))) },
      { label: "completed", stroke: "#16a34a", fill: "rgba(22, 163, 74, 0.12)", width: 2, paths: stepped },
      { label: "failed", stroke: "#dc2626", fill: "rgba(220, 38, 38, 0.10)", width: 2, paths: stepped },
    ],
    axes: [
      { label: "time", values: (_u, splits) => drawn("x", splits.map((s) => hhmm(new Date(s * 1000)))) },
      { label: "jobs / min", incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000], values: (_u, splits) => drawn("y", splits.map((s) => String(s))) },
    ],
  };
}

/**
 * The range buttons and the chart's box.
 * @param {number} chosen
 */
const markup = (chosen) => `<div class="row range" role="group" aria-label="time range">
    ${RANGES.map((r) => `<button type="button" data-minutes="${r.minutes}" class="${r.minutes === chosen ? "active" : ""}" aria-pressed="${r.minutes === chosen}">${esc(r.label)}</button>`).join("")}
    <span class="muted" id="throughput-summary"></span>
  </div><div id="throughput" class="chart"></div>`;

/**
 * Draws the throughput chart into `box`, with its range buttons; returns the
 * function that reloads it (the caller calls it on job events and on a timer).
 * @param {HTMLElement} box
 * @returns {() => Promise<void>}
 */
export function throughputChart(box) {
  let minutes = Number(sessionStorage.getItem("skein-range")) || 60;
  if (!RANGES.some((r) => r.minutes === minutes)) minutes = 60;
  box.innerHTML = markup(minutes);
  const el = byId("throughput");
  const plot = new uPlot(options(el), [[], [], []], el);
  const resized = new ResizeObserver(() => plot.setSize({ width: Math.max(320, el.clientWidth), height: HEIGHT }));
  resized.observe(el);
  let shown = true;
  onLeave(() => {
    shown = false;
    resized.disconnect();
    plot.destroy();
  });
  const load = async () => {
    const asked = minutes;
    /** @type {ThroughputRow[]} */
    const rows = await api(`/api/throughput?minutes=${asked}`);
    if (!shown || asked !== minutes) return; // the page was left, or a newer range was chosen meanwhile
    const data = series(rows, asked, Date.now());
    plot.setData(data);
    const sum = (/** @type {number[]} */ xs) => xs.reduce((a, b) => a + b, 0);
    const label = RANGES.find((r) => r.minutes === asked)?.label ?? `${asked} min`;
    const summary = byId("throughput-summary");
    summary.textContent = `${sum(data[1])} completed · ${sum(data[2])} failed in the last ${label}`;
    summary.dataset.completed = String(sum(data[1]));
    summary.dataset.failed = String(sum(data[2]));
    el.dataset.minutes = String(asked);
  };
  for (const b of box.querySelectorAll("button[data-minutes]")) {
    b.addEventListener("click", () => {
      minutes = Number(/** @type {HTMLElement} */ (b).dataset.minutes);
      sessionStorage.setItem("skein-range", String(minutes));
      for (const o of box.querySelectorAll("button[data-minutes]")) {
        o.classList.toggle("active", o === b);
        o.setAttribute("aria-pressed", String(o === b));
      }
      void load().catch(showError);
    });
  }
  return load;
}
