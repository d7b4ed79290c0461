/// <reference lib="dom" />
import { existsSync, mkdirSync } from "node:fs";
import path from "node:path";
import type { FastifyInstance } from "fastify";
import { chromium, type Browser, type Page } from "playwright-core";
import { Worker, type CreateJobInput } from "../src";
import { createServer, createTenantToken } from "../src/server";
import { truncateAll, useTestDatabase } from "./helpers/db";
import { waitFor } from "./helpers/wait";

// The dashboard, driven as a person would in headless Chromium (Debian's
// `chromium`, which .ci/run installs). SKEIN_SCREENSHOTS=1 also saves
// screenshots of the main pages to docs/screenshots/. Every page is also
// watched for script errors and Content Security Policy refusals (the
// vendored uPlot and ELK must work under the server's strict CSP).

const CHROMIUM = "/usr/bin/chromium";
const ctx = useTestDatabase();
const ADMIN = "admin-token-for-browser-tests-42";
let app: FastifyInstance;
let worker: Worker;
let browser: Browser;
let base: string;
let orgA: string;
let orgB: string;
const shots = process.env.SKEIN_SCREENSHOTS === "1" ? path.resolve(__dirname, "..", "docs", "screenshots") : undefined;
/** Script errors and CSP refusals seen on any page (there must be none). */
const pageErrors: string[] = [];

const haveChromium = existsSync(CHROMIUM);
if (!haveChromium && process.env.CI) throw new Error(`${CHROMIUM} is missing: .ci/run installs Debian's chromium for these tests`);
const describeIfBrowser = haveChromium ? describe : describe.skip;

describeIfBrowser("dashboard in a real browser", () => {
  beforeAll(async () => {
    await truncateAll(ctx.pool);
    const failedOnce = new Set<string>();
    worker = new Worker({
      prisma: ctx.prisma,
      // The 1,000-job graph waits in queue "big", drawn but never run.
      queues: ["default"],
      pollInterval: 0.2,
      retryBackoff: { baseSeconds: 0.05, maxSeconds: 0.1 },
      agentRegistry: {
        step: async (params, c) => {
          c.log.info(`working on ${c.job.name}`);
          await new Promise((r) => setTimeout(r, Number((params as { ms?: number } | null)?.ms ?? 300)));
          return { done: c.job.name };
        },
        // Two durable steps.
        staged: async (_p, c) => {
          const rows = await c.step("fetch rows", async () => ({ rows: 3 }));
          await c.step("store rows", async () => `stored ${rows.rows}`);
          return "staged";
        },
        // Fails the first time it runs (in this process), succeeds when retried.
        flaky: async (_p, c) => {
          if (!failedOnce.has(c.job.id)) {
            failedOnce.add(c.job.id);
            throw new Error("flaky: failed on purpose");
          }
          return { recovered: true };
        },
      },
    });
    await worker.start();
    app = await createServer({ prisma: ctx.prisma, adminToken: ADMIN, workers: [worker] });
    await app.listen({ port: 0, host: "127.0.0.1" });
    base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
    orgA = (await createTenantToken(ctx.prisma, "orgA", "browser test")).token;
    orgB = (await createTenantToken(ctx.prisma, "orgB")).token;
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    });
    if (shots) mkdirSync(shots, { recursive: true });
  });
  afterAll(async () => {
    await browser?.close();
    await app?.close();
    await worker?.stop({ force: true });
  });

  afterEach(() => {
    expect(pageErrors.splice(0)).toEqual([]);
  });

  async function newPage(): Promise<Page> {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    page.on("pageerror", (error) => pageErrors.push(`page error: ${error.message}`));
    page.on("console", (message) => {
      if (message.type() === "error" && /Content Security Policy|Refused to/i.test(message.text())) pageErrors.push(message.text());
    });
    return page;
  }

  async function loggedIn(token: string): Promise<Page> {
    const page = await newPage();
    await page.goto(base);
    await page.fill("#token", token);
    await page.click("button[type=submit]");
    await page.waitForSelector("#nav:not([hidden])");
    return page;
  }

  const shot = async (page: Page, name: string) => {
    if (shots) await page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
  };

  it("refuses a wrong token at the login form", async () => {
    const page = await newPage();
    await page.goto(base);
    await page.fill("#token", "not-a-token");
    await page.click("button[type=submit]");
    await page.waitForSelector(".login .error");
    expect(await page.textContent(".login .error")).toMatch(/Refused: 401/);
    await page.close();
  });

  it("a tenant logs in, submits a graph and watches it complete live", async () => {
    const page = await loggedIn(orgA);
    expect(await page.textContent("#who")).toBe("tenant orgA");
    await page.click("a[href='#/submit']");
    const graph = {
      jobs: [
        { id: "ui-load", jobType: "agent", name: "load", payload: { agent_name: "step", parameters: { ms: 600 } } },
        { id: "ui-clean", jobType: "agent", name: "clean", payload: { agent_name: "step" }, dependencies: ["ui-load"] },
        { id: "ui-train", jobType: "agent", name: "train", payload: { agent_name: "step" }, dependencies: ["ui-load"] },
        { id: "ui-report", jobType: "agent", name: "report", payload: { agent_name: "step" }, dependencies: ["ui-clean", "ui-train"] },
      ],
    };
    await page.fill("#graph-json", JSON.stringify(graph, null, 2));
    await page.click("#submit-graph");
    await page.waitForSelector("#submitted tr[data-job='ui-report']");
    await page.click("#submitted a[href='#/job/ui-report']");
    await page.waitForSelector("#graph g[data-node='ui-load']");
    expect(await page.getAttribute("#graph g[data-node='ui-report']", "data-status")).toBe("pending");
    // No reload: the page follows the job's event stream until the whole graph is done.
    await page.waitForSelector("#graph g[data-node='ui-report'][data-status='completed']", { timeout: 20_000 });
    await page.waitForFunction(() => document.querySelector("h1")?.textContent?.includes("completed"));
    expect(await page.locator("#graph g.node").count()).toBe(4);
    await page.waitForFunction(() => document.getElementById("logs")?.textContent?.includes("working on report"));
    await shot(page, "job-graph");
    await page.click("a[href='#/']");
    await page.waitForSelector(".card[data-status='completed']");
    await shot(page, "overview");
    await page.close();
  });

  it("retries a failed job from its page", async () => {
    await ctx.jobManager.createJob({ id: "ui-flaky", jobType: "agent", name: "flaky import", tenant: "orgA", payload: { agent_name: "flaky" }, maxRetries: 0 });
    const page = await loggedIn(orgA);
    await page.goto(`${base}/#/job/ui-flaky`);
    await page.waitForFunction(() => document.querySelector("h1")?.textContent?.includes("failed"), undefined, { timeout: 20_000 });
    await page.waitForSelector("#retry");
    await shot(page, "failed-job");
    await page.click("#retry");
    await page.waitForFunction(() => document.querySelector("h1")?.textContent?.includes("completed"), undefined, { timeout: 20_000 });
    expect((await ctx.jobManager.getJob("ui-flaky"))?.result).toEqual({ recovered: true });
    await page.click("a[href='#/jobs']");
    await page.waitForSelector("tr[data-job='ui-flaky']");
    await shot(page, "jobs");
    await page.close();
  });

  it("a job's page shows its durable steps and its parent's key", async () => {
    await ctx.jobManager.createJob({ id: "ui-parent", jobType: "agent", name: "parent", tenant: "orgA", payload: { agent_name: "noop" } });
    await ctx.jobManager.createJobs([{ id: "t4:orgA:ui-staged", jobType: "agent", name: "staged", tenant: "orgA", payload: { agent_name: "staged" } }], {
      parent: { id: "ui-parent", tenant: "orgA", taskId: null },
    });
    const page = await loggedIn(orgA);
    await page.goto(`${base}/#/job/ui-staged`);
    await page.waitForFunction(() => document.querySelector("h1")?.textContent?.includes("completed"), undefined, { timeout: 20_000 });
    await page.waitForSelector("#steps");
    const column = (n: number) => page.locator(`#steps tr td:nth-child(${n})`).allTextContents();
    expect(await column(2)).toEqual(["fetch rows", "store rows"]);
    expect(await column(3)).toEqual(["1", "1"]);
    expect(await column(4)).toEqual(['{"rows":3}', '"stored 3"']);
    expect(await page.textContent("#job-details")).toMatch(/ui-parent \(key -\)/);
    await shot(page, "job-steps");
    await page.close();
  });

  it("another tenant's jobs are refused and never shown", async () => {
    const page = await loggedIn(orgB);
    await page.goto(`${base}/#/job/ui-report`);
    await page.waitForSelector(".error");
    expect(await page.textContent(".error")).toMatch(/404/);
    await page.click("a[href='#/jobs']");
    await page.waitForSelector("main h1");
    await page.waitForSelector("main p.muted");
    expect(await page.locator("tr[data-job]").count()).toBe(0);
    expect(await page.content()).not.toContain("ui-report");
    await page.close();
  });

  it("the admin sees workers, schedules, dead letters and tenants", async () => {
    await ctx.jobManager.createSchedule({ name: "nightly", cron: "0 3 * * *", timezone: "Europe/Paris", jobTemplate: { jobType: "agent", payload: { agent_name: "step" } } });
    await ctx.jobManager.setRateLimit("openai", { perSecond: 120 });
    const page = await loggedIn(ADMIN);
    await page.click("a[href='#/workers']");
    await page.waitForSelector(`text=${worker.workerId}`);
    await page.click("a[href='#/schedules']");
    await page.waitForSelector("text=nightly");
    await page.click("button[data-toggle='nightly']");
    await page.waitForSelector("button[data-toggle='nightly'][data-paused='true']");
    await shot(page, "schedules");
    await page.click("a[href='#/limits']");
    await page.waitForSelector("text=openai");
    await page.waitForSelector("text=browser test");
    await shot(page, "tenants-and-limits");
    await page.click("a[href='#/dlq']");
    await page.waitForSelector("main h1");
    await shot(page, "dead-letters");
    await page.close();
  });

  it("the admin pauses and resumes a queue, and quiets and resumes a worker, from the dashboard", async () => {
    // The test worker serves the default queue: pause it for the length of this test.
    const page = await loggedIn(ADMIN);
    try {
      await page.click("a[href='#/queues']");
      await page.fill("#pause-form input", "default");
      await page.click("#pause-form button");
      await page.waitForSelector("tr[data-queue='default'][data-paused='true']");
      await ctx.jobManager.createJob({ id: "ui-paused-1", jobType: "agent", name: "letter", payload: { agent_name: "step", parameters: { ms: 10 } } });
      await page.waitForSelector("tr[data-queue='default'] td.ready:text('1')");
      await shot(page, "queues");
      await new Promise((resolve) => setTimeout(resolve, 800));
      expect((await ctx.jobManager.getJob("ui-paused-1"))?.status).toBe("pending");
      await page.click("tr[data-queue='default'] button[data-action='resume']");
      await waitFor(async () => (await ctx.jobManager.getJob("ui-paused-1"))?.status === "completed", "the resumed queue's job");
    } finally {
      await ctx.jobManager.resumeQueue("default");
    }
    await page.click("a[href='#/workers']");
    await page.click(`button[data-action='quiet'][data-worker-id='${worker.workerId}']`);
    await page.waitForSelector(`tr[data-worker='${worker.workerId}'][data-status='quiet']`);
    try {
      expect((await ctx.jobManager.listWorkers()).find((w) => w.id === worker.workerId)?.status).toBe("quiet");
      await shot(page, "workers-quiet");
      await page.click(`button[data-action='resume'][data-worker-id='${worker.workerId}']`);
      await page.waitForSelector(`tr[data-worker='${worker.workerId}'][data-status='running']`);
    } finally {
      await ctx.jobManager.resumeWorker(worker.workerId);
    }
    await page.close();
  });

  it("the throughput chart has time and jobs-per-minute axes, a time range that refetches, and follows new completions live", async () => {
    // Two jobs of orgA complete and one fails, so both series have data.
    await ctx.jobManager.createJobs([
      { id: "ui-tp-1", jobType: "agent", name: "tp", tenant: "orgA", payload: { agent_name: "step", parameters: { ms: 20 } } },
      { id: "ui-tp-2", jobType: "agent", name: "tp", tenant: "orgA", payload: { agent_name: "step", parameters: { ms: 20 } } },
      { id: "ui-tp-3", jobType: "agent", name: "tp", tenant: "orgA", payload: { agent_name: "flaky" }, maxRetries: 0 },
    ]);
    const ids = ["ui-tp-1", "ui-tp-2", "ui-tp-3"];
    await waitFor(async () => (await Promise.all(ids.map((id) => ctx.jobManager.getJob(id)))).every((j) => j?.status === "completed" || j?.status === "failed"), "the throughput jobs");
    const page = await loggedIn(orgA);
    await page.waitForSelector("#throughput canvas");
    await page.waitForSelector("#throughput[data-minutes='60'][data-ticks-x][data-ticks-y]");
    const ticks = async () => page.$eval("#throughput", (el) => ({ x: (el as HTMLElement).dataset.ticksX?.split("|") ?? [], y: (el as HTMLElement).dataset.ticksY?.split("|") ?? [] }));
    const hour = await ticks();
    expect(hour.x.length).toBeGreaterThanOrEqual(3);
    for (const label of hour.x) expect(label).toMatch(/^\d\d:\d\d$/);
    expect(hour.y[0]).toBe("0");
    for (const label of hour.y) expect(label).toMatch(/^\d+$/);
    expect(await page.textContent("#throughput .u-legend")).toMatch(/completed[\s\S]*failed/);
    const completed = async () => Number(await page.getAttribute("#throughput-summary", "data-completed"));
    expect(await completed()).toBeGreaterThanOrEqual(2);
    expect(await page.getAttribute("#throughput-summary", "data-failed")).not.toBe("0");

    // Another range asks the API for that many minutes and redraws the axes.
    const asked = page.waitForRequest((r) => r.url().endsWith("/api/throughput?minutes=360"), { timeout: 5000 });
    await page.click("button[data-minutes='360']");
    await asked;
    await page.waitForSelector("#throughput[data-minutes='360']", { timeout: 5000 });
    await page.waitForFunction((before) => (document.getElementById("throughput") as HTMLElement).dataset.ticksX !== before, hour.x.join("|"));
    expect(await page.getAttribute("button[data-minutes='360']", "aria-pressed")).toBe("true");
    expect(await page.textContent("#throughput-summary")).toMatch(/in the last 6 h$/);
    await shot(page, "throughput");

    // A job finishing now shows up without a reload.
    const before = await completed();
    await ctx.jobManager.createJob({ id: "ui-live-1", jobType: "agent", name: "live", tenant: "orgA", payload: { agent_name: "step", parameters: { ms: 50 } } });
    await page.waitForFunction((n) => Number(document.getElementById("throughput-summary")?.dataset.completed) > n, before, { timeout: 20_000 });
    await page.close();
  });

  it("the workers view shows each worker's running jobs, slots and heartbeat live", async () => {
    const page = await loggedIn(ADMIN);
    await page.click("a[href='#/workers']");
    const row = `tr[data-worker='${worker.workerId}']`;
    await page.waitForSelector(`${row}[data-status='running'] .running[data-running='0']`);
    const firstAge = Number(await page.getAttribute(`${row} td.age`, "data-age"));
    expect(await page.textContent(`${row} td.age`)).toMatch(/^\d+ s ago$/);

    // No reload: the job appears under its worker while it runs, then leaves.
    await ctx.jobManager.createJob({ id: "ui-slow", jobType: "agent", name: "slow step", tenant: "orgA", payload: { agent_name: "step", parameters: { ms: 3000 } } });
    await page.waitForSelector(`${row} .running[data-running='1']`, { timeout: 20_000 });
    await page.waitForSelector(`${row} a[data-running-job='ui-slow']`);
    expect(await page.getAttribute(`${row} meter`, "value")).toBe("1");
    await shot(page, "workers");
    await page.click(`${row} a[data-running-job='ui-slow']`);
    await page.waitForFunction(() => document.querySelector("h1")?.textContent?.includes("slow step"));
    await page.goBack();
    await page.waitForSelector(`${row} .running[data-running='0']`, { timeout: 20_000 });
    // The heartbeat age moves on by itself between polls (it ticks each second) and renews with each heartbeat.
    await page.waitForFunction(([sel, age]) => Number(document.querySelector(sel)?.getAttribute("data-age")) !== age, [`${row} td.age`, firstAge] as const);
    await page.close();
  });

  it("draws a graph of 1,000 jobs with ELK: every node, no overlapping boxes, no edge under a node or along another; zoom, find and click", async () => {
    const jobs = bigGraph(1000);
    await ctx.jobManager.createJobs(jobs);
    await ctx.jobManager.cancelJob("big-900", { cascade: true, reason: "cancelled for the picture" });
    const edgeCount = jobs.reduce((n, j) => n + (j.dependencies?.length ?? 0), 0);
    const page = await loggedIn(ADMIN);
    await page.goto(`${base}/#/graph?queue=big&limit=1000`);
    await page.waitForSelector("#graph[data-nodes='1000']", { timeout: 90_000 });
    const info = await page.textContent("#graph-info");
    console.log(`1,000-job graph: ${info}`);
    const g = await page.evaluate(graphGeometry);
    expect(g.nodes.sort()).toEqual(jobs.map((j) => j.id as string).sort());
    expect(g.edges).toBe(edgeCount);
    expect(g.overlappingBoxes).toEqual([]);
    expect(g.edgesThroughNodes).toEqual([]);
    expect(g.detachedEnds).toEqual([]);
    expect(g.edgesAlongEdges).toEqual([]);
    expect(g.withoutArrow).toBe(0);
    const dependent = jobs.find((j) => j.dependencies?.includes("big-900"))?.id as string;
    expect(await page.getAttribute(`#graph g.node[data-node='${dependent}']`, "data-status")).toBe("cancelled");

    // Fit to view shows all of it, labels hidden at that size; zooming in brings them back.
    expect(await page.getAttribute("#graph", "class")).toContain("far");
    await shot(page, "job-graph-1000");
    const scale = async () => Number(await page.getAttribute("#graph", "data-scale"));
    const fitted = await scale();
    const box = (await page.locator("#graph").boundingBox())!;
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    for (let i = 0; i < 6; i++) await page.mouse.wheel(0, -400);
    await page.waitForFunction((s) => Number(document.getElementById("graph")?.dataset.scale) > s * 5, fitted);
    // A drag pans (the viewBox moves) and opens nothing.
    const viewBefore = await page.getAttribute("#graph", "viewBox");
    await page.mouse.down();
    await page.mouse.move(box.x + box.width / 2 - 200, box.y + box.height / 2 - 50, { steps: 5 });
    await page.mouse.up();
    expect(await page.getAttribute("#graph", "viewBox")).not.toBe(viewBefore);
    expect(page.url()).toContain("#/graph");

    // Find a job: the view centres on it at a readable size; a click opens it.
    await page.fill(".find input", "big-500");
    await page.press(".find input", "Enter");
    await page.waitForSelector("#graph:not(.far) g.node.found[data-node='big-500']");
    await shot(page, "job-graph-1000-zoomed");
    await page.click("#graph g.node[data-node='big-500']");
    await page.waitForFunction(() => location.hash === "#/job/big-500");
    await page.waitForSelector("#graph g.node.current[data-node='big-500']", { timeout: 60_000 });
    await page.close();
  }, 180_000);
});

/**
 * A 1,000-job graph shaped to be hard to draw: each job depends on one or two
 * of the 30 before it, so many edges span several layers and must be routed
 * around the nodes in between.
 */
function bigGraph(n: number): CreateJobInput[] {
  let seed = 7;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  const steps = ["extract", "parse", "clean", "enrich", "train", "score", "report"];
  return Array.from({ length: n }, (_, i) => {
    const deps = new Set<string>();
    if (i > 0) for (let k = random() < 0.5 ? 2 : 1; k > 0; k--) deps.add(`big-${Math.max(0, i - 1 - Math.floor(random() * 30))}`);
    return { id: `big-${i}`, jobType: "agent", name: `${steps[i % steps.length]}-${i}`, queue: "big", payload: { agent_name: "step" }, dependencies: [...deps] };
  });
}

/**
 * The drawn graph's geometry, read from the SVG: node ids, boxes that
 * overlap, edge segments that pass through a node other than their own ends,
 * edge ends not on their nodes, and segments of two edges that lie along each
 * other (one hiding the other). Runs in the page.
 */
function graphGeometry() {
  type Box = { id: string; x: number; y: number; w: number; h: number };
  const num = (el: Element, name: string) => Number(el.getAttribute(name));
  const boxes: Box[] = [...document.querySelectorAll("#graph g.node")].map((g) => {
    const r = g.querySelector("rect") as SVGRectElement;
    return { id: (g as SVGGElement).dataset.node as string, x: num(r, "x"), y: num(r, "y"), w: num(r, "width"), h: num(r, "height") };
  });
  const byId = new Map(boxes.map((b) => [b.id, b]));
  const paths = [...document.querySelectorAll("#graph path.edge")] as SVGPathElement[];
  const edges = paths.map((p) => ({
    from: p.dataset.from as string,
    to: p.dataset.to as string,
    points: (p.getAttribute("d") ?? "").trim().split(/\s+/).map((t) => t.slice(1).split(",").map(Number) as [number, number]),
  }));
  const overlappingBoxes: string[] = [];
  const sorted = [...boxes].sort((a, b) => a.x - b.x);
  for (let i = 0; i < sorted.length; i++) {
    for (let j = i + 1; j < sorted.length && sorted[j].x < sorted[i].x + sorted[i].w; j++) {
      const a = sorted[i], b = sorted[j];
      if (a.y < b.y + b.h && b.y < a.y + a.h) overlappingBoxes.push(`${a.id} & ${b.id}`);
    }
  }
  // Liang-Barsky: does segment a-b pass through the box (shrunk by a pixel, so touching is not crossing)?
  const crosses = (a: [number, number], b: [number, number], r: Box) => {
    let t0 = 0, t1 = 1;
    const dx = b[0] - a[0], dy = b[1] - a[1];
    const p = [-dx, dx, -dy, dy];
    const q = [a[0] - (r.x + 1), r.x + r.w - 1 - a[0], a[1] - (r.y + 1), r.y + r.h - 1 - a[1]];
    for (let i = 0; i < 4; i++) {
      if (p[i] === 0) {
        if (q[i] < 0) return false;
      } else {
        const t = q[i] / p[i];
        if (p[i] < 0) t0 = Math.max(t0, t);
        else t1 = Math.min(t1, t);
        if (t0 > t1) return false;
      }
    }
    return t1 - t0 > 1e-6;
  };
  const onBorder = (pt: [number, number], r: Box | undefined) =>
    !!r && pt[0] >= r.x - 1 && pt[0] <= r.x + r.w + 1 && pt[1] >= r.y - 1 && pt[1] <= r.y + r.h + 1 &&
    (Math.abs(pt[0] - r.x) <= 1 || Math.abs(pt[0] - r.x - r.w) <= 1 || Math.abs(pt[1] - r.y) <= 1 || Math.abs(pt[1] - r.y - r.h) <= 1);
  const edgesThroughNodes: string[] = [];
  const detachedEnds: string[] = [];
  const segments: Array<{ edge: number; a: [number, number]; b: [number, number] }> = [];
  edges.forEach((e, n) => {
    if (!onBorder(e.points[0], byId.get(e.from)) || !onBorder(e.points[e.points.length - 1], byId.get(e.to))) detachedEnds.push(`${e.from}->${e.to}`);
    for (let i = 0; i + 1 < e.points.length; i++) {
      segments.push({ edge: n, a: e.points[i], b: e.points[i + 1] });
      for (const r of boxes) if (r.id !== e.from && r.id !== e.to && crosses(e.points[i], e.points[i + 1], r)) edgesThroughNodes.push(`${e.from}->${e.to} through ${r.id}`);
    }
  });
  const edgesAlongEdges: string[] = [];
  for (let i = 0; i < segments.length; i++) {
    const { a, b, edge } = segments[i];
    const dx = b[0] - a[0], dy = b[1] - a[1], length = Math.hypot(dx, dy);
    if (length < 1) continue;
    for (let j = i + 1; j < segments.length; j++) {
      const s = segments[j];
      if (s.edge === edge || Math.max(s.a[0], s.b[0]) < Math.min(a[0], b[0]) || Math.min(s.a[0], s.b[0]) > Math.max(a[0], b[0])) continue;
      const off = (pt: [number, number]) => Math.abs((pt[0] - a[0]) * dy - (pt[1] - a[1]) * dx) / length;
      if (off(s.a) > 0.5 || off(s.b) > 0.5) continue;
      const along = (pt: [number, number]) => ((pt[0] - a[0]) * dx + (pt[1] - a[1]) * dy) / length;
      const shared = Math.min(length, Math.max(along(s.a), along(s.b))) - Math.max(0, Math.min(along(s.a), along(s.b)));
      if (shared > 2) edgesAlongEdges.push(`${edges[edge].from}->${edges[edge].to} along ${edges[s.edge].from}->${edges[s.edge].to}`);
    }
  }
  return {
    nodes: boxes.map((b) => b.id),
    edges: edges.length,
    overlappingBoxes: overlappingBoxes.slice(0, 10),
    edgesThroughNodes: edgesThroughNodes.slice(0, 10),
    detachedEnds: detachedEnds.slice(0, 10),
    edgesAlongEdges: edgesAlongEdges.slice(0, 10),
    withoutArrow: paths.filter((p) => p.getAttribute("marker-end") !== "url(#arrow)").length + (document.querySelector("#graph marker#arrow path") ? 0 : 1),
  };
}
