/// <reference lib="dom" />
import { existsSync, mkdirSync } from "node:fs";
import path from "node:path";
import type { FastifyInstance } from "fastify";
import { chromium, type Browser, type Page } from "playwright-core";
import { Worker } from "../src";
import { createServer, createTenantToken } from "../src/server";
import { truncateAll, useTestDatabase } from "./helpers/db";

// The dashboard, driven as a person would in headless Chromium (Debian's
// `chromium`, which .ci/run installs). SKEIN_SCREENSHOTS=1 also saves
// screenshots of the main pages to docs/screenshots/.

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

const haveChromium = existsSync(CHROMIUM);
if (!haveChromium && process.env.CI) throw new Error(`${CHROMIUM} is missing: .ci/run installs Debian's chromium for these tests`);
const describeIfBrowser = haveChromium ? describe : describe.skip;

describeIfBrowser("dashboard in a real browser", () => {
  beforeAll(async () => {
    await truncateAll(ctx.pool);
    const failedOnce = new Set<string>();
    worker = new Worker({
      prisma: ctx.prisma,
      pollInterval: 0.2,
      retryBackoff: { baseSeconds: 0.05, maxSeconds: 0.1 },
      agentRegistry: {
        step: async (params, c) => {
          c.log.info(`working on ${c.job.name}`);
          await new Promise((r) => setTimeout(r, Number((params as { ms?: number } | null)?.ms ?? 300)));
          return { done: c.job.name };
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

  async function loggedIn(token: string): Promise<Page> {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
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
    const page = await browser.newPage();
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
    await shot(page, "workers");
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
});
