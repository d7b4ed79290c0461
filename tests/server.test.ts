import type { FastifyInstance } from "fastify";
import http from "node:http";
import { createServer, createTenantToken, revokeTenantToken } from "../src/server";
import { truncateAll, useTestDatabase } from "./helpers/db";
import { TestDriver } from "./helpers/store";

const ctx = useTestDatabase();
const ADMIN = "admin-token-for-tests-0123456789";
let app: FastifyInstance;
let orgA: string;
let orgB: string;

let base: string;
beforeAll(async () => {
  app = await createServer({ prisma: ctx.prisma, adminToken: ADMIN });
  await app.listen({ port: 0, host: "127.0.0.1" });
  base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
});
afterAll(() => app?.close());
beforeEach(async () => {
  await truncateAll(ctx.pool);
  await ctx.pool.query("TRUNCATE api_tokens, schedules, schedule_ticks, rate_limits, tasks, job_events, job_logs, job_steps");
  orgA = (await createTenantToken(ctx.prisma, "orgA")).token;
  orgB = (await createTenantToken(ctx.prisma, "orgB")).token;
});

type Method = "GET" | "POST" | "PUT" | "DELETE";
/** One real HTTP request to the listening server. */
async function call(method: Method, url: string, token?: string, body?: unknown): Promise<{ statusCode: number; body: string; json(): unknown }> {
  const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
  if (body !== undefined) headers["content-type"] = "application/json";
  const controller = new AbortController();
  const res = await fetch(`${base}${url}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal: controller.signal });
  // An event stream never ends by itself: read only its status.
  const text = res.headers.get("content-type")?.startsWith("text/event-stream") ? (controller.abort(), "") : await res.text();
  return { statusCode: res.status, body: text, json: () => JSON.parse(text) };
}

const job = (id: string, extra: Record<string, unknown> = {}) => ({ id, jobType: "agent", name: id, payload: { agent_name: "noop" }, ...extra });

describe("authentication", () => {
  it("no token, a wrong token or a revoked one gets 401 and no data", async () => {
    await call("POST", "/api/jobs", orgA, job("a1"));
    for (const token of [undefined, "nope", `${orgA}x`, ADMIN.slice(0, -1)]) {
      const res = await call("GET", "/api/jobs", token);
      expect(res.statusCode).toBe(401);
      expect(res.body).not.toMatch(/a1/);
    }
    const id = orgA.split("_")[1];
    expect(await revokeTenantToken(ctx.prisma, id)).toBe(true);
    expect((await call("GET", "/api/jobs", orgA)).statusCode).toBe(401);
    expect((await call("GET", "/metrics")).statusCode).toBe(401);
  });

  it("health and OpenAPI are open; /metrics needs the admin token", async () => {
    expect((await call("GET", "/healthz")).json()).toEqual({ ok: true });
    expect((await call("GET", "/readyz")).json()).toEqual({ ok: true });
    const spec = (await call("GET", "/openapi.json")).json() as { openapi: string; paths: Record<string, unknown> };
    expect(spec.openapi).toBe("3.0.3");
    expect(Object.keys(spec.paths)).toEqual(expect.arrayContaining(["/api/jobs", "/api/graphs", "/api/jobs/{id}/stream", "/api/dlq/replay"]));
    expect((await call("GET", "/metrics", orgA)).statusCode).toBe(403);
    await call("POST", "/api/jobs", ADMIN, job("m1", { queue: "emails" }));
    const metrics = await call("GET", "/metrics", ADMIN);
    expect(metrics.statusCode).toBe(200);
    expect(metrics.body).toMatch(/skein_jobs\{status="pending",queue="emails"\} 1/);
    expect(metrics.body).toMatch(/skein_claim_latency_seconds_bucket/);
  });
});

describe("jobs and graphs", () => {
  it("a tenant creates jobs and graphs for itself, lists only its own, and reads them", async () => {
    const created = await call("POST", "/api/jobs", orgA, job("a1"));
    expect(created.statusCode).toBe(201);
    expect(created.json()).toMatchObject({ id: "a1", tenant: "orgA", status: "pending" });
    const graph = await call("POST", "/api/graphs", orgA, { jobs: [job("a2"), job("a3", { dependencies: ["a2", { id: "a1", onFailure: "ignore" }] })] });
    expect(graph.statusCode).toBe(201);
    expect((graph.json() as { jobs: unknown[] }).jobs).toHaveLength(2);
    await call("POST", "/api/jobs", orgB, job("b1"));
    const listA = (await call("GET", "/api/jobs", orgA)).json() as Array<{ id: string }>;
    expect(listA.map((j) => j.id).sort()).toEqual(["a1", "a2", "a3"]);
    const listAll = (await call("GET", "/api/jobs?limit=10", ADMIN)).json() as Array<{ id: string }>;
    expect(listAll).toHaveLength(4);
    expect((await call("GET", "/api/jobs?tenant=orgB", ADMIN)).json()).toHaveLength(1);
    expect((await call("GET", "/api/jobs/a3", orgA)).json()).toMatchObject({ id: "a3", pendingDependencies: 2 });
    expect((await call("GET", "/api/jobs/a3/explain", orgA)).json()).toMatchObject({ reasons: expect.arrayContaining([expect.objectContaining({ code: "dependencies" })]) });
    expect((await call("GET", "/api/jobs/a3/graph", orgA)).json()).toMatchObject({ edges: expect.arrayContaining([{ from: "a2", to: "a3", onFailure: "cancel" }]) });
    expect((await call("GET", "/api/jobs/a3/events", orgA)).json()).toEqual([expect.objectContaining({ event: "created" })]);
    expect((await call("GET", "/api/jobs/a3/logs", orgA)).json()).toEqual([]);
    const overview = (await call("GET", "/api/overview", orgA)).json() as { tenant: string; counts: { pending: number } };
    expect(overview).toMatchObject({ tenant: "orgA", counts: { pending: 3 } });
  });

  it.each([
    ["a missing name", job("x", { name: undefined }), "body.name"],
    ["an unknown job type", job("x", { jobType: "shell" }), "body.jobType"],
    ["an unknown field", job("x", { color: "red" }), "body.color"],
    ["negative retries", job("x", { maxRetries: -1 }), "body.maxRetries"],
    ["a bad policy", job("x", { dependencies: [{ id: "y", onFailure: "explode" }] }), "body.dependencies.0"],
    ["a bad date", job("x", { runAt: "soon" }), "body.runAt"],
  ])("rejects %s with 400 naming the field", async (_what, body, field) => {
    const res = await call("POST", "/api/jobs", orgA, body);
    expect(res.statusCode).toBe(400);
    expect((res.json() as { field: string }).field).toBe(field);
    expect((await call("GET", "/api/jobs", orgA)).json()).toEqual([]);
  });

  it("rejects bad graphs and unknown dependencies with 400, duplicates with 409, big bodies with 413", async () => {
    expect((await call("POST", "/api/graphs", orgA, { jobs: [] })).statusCode).toBe(400);
    const cycle = await call("POST", "/api/graphs", orgA, { jobs: [job("c1", { dependencies: ["c2"] }), job("c2", { dependencies: ["c1"] })] });
    expect(cycle.statusCode).toBe(400);
    expect(cycle.json()).toMatchObject({ field: "dependencies" });
    expect((await call("POST", "/api/jobs", orgA, job("d1", { dependencies: ["ghost"] }))).statusCode).toBe(400);
    await call("POST", "/api/jobs", orgA, job("dup"));
    expect((await call("POST", "/api/jobs", orgA, job("dup"))).statusCode).toBe(409);
    const huge = await call("POST", "/api/jobs", orgA, job("big", { payload: { blob: "x".repeat(3 * 1024 * 1024) } }));
    expect(huge.statusCode).toBe(413);
  });

  it("a tenant never sees or touches another tenant's jobs, even by guessing ids", async () => {
    await call("POST", "/api/jobs", orgA, job("secret", { maxRetries: 0 }));
    const routes: Array<[Method, string, unknown?]> = [
      ["GET", "/api/jobs/secret"],
      ["GET", "/api/jobs/secret/events"],
      ["GET", "/api/jobs/secret/logs"],
      ["GET", "/api/jobs/secret/explain"],
      ["GET", "/api/jobs/secret/graph"],
      ["GET", "/api/jobs/secret/stream"],
      ["POST", "/api/jobs/secret/cancel", {}],
      ["POST", "/api/jobs/secret/retry", {}],
    ];
    for (const [method, url, body] of routes) {
      const res = await call(method, url, orgB, body);
      expect([url, res.statusCode]).toEqual([url, 404]);
      expect(res.body).not.toMatch(/"name":"secret"/);
    }
    expect((await call("GET", "/api/jobs?tenant=orgA", orgB)).statusCode).toBe(403);
    expect((await call("POST", "/api/jobs", orgB, job("sneaky", { tenant: "orgA" }))).statusCode).toBe(403);
    const dependent = await call("POST", "/api/jobs", orgB, job("leech", { dependencies: ["secret"] }));
    expect(dependent.statusCode).toBe(400);
    expect(dependent.json()).toMatchObject({ field: "dependencies" });
    expect((await call("GET", "/api/jobs", orgB)).json()).toEqual([]);
    expect((await ctx.jobManager.getJob("t4:orgA:secret"))?.status).toBe("pending"); // stored under orgA's own ids
  });

  it("cancel with cascade, retry with downstream, and the DLQ, scoped to the tenant", async () => {
    await call("POST", "/api/graphs", orgA, { jobs: [job("p", { maxRetries: 0 }), job("q", { dependencies: ["p"] })] });
    await call("POST", "/api/jobs", orgB, job("other", { maxRetries: 0 }));
    const driver = new TestDriver(ctx.prisma);
    await driver.failFinally("t4:orgA:p");
    await driver.failFinally("t4:orgB:other");
    expect(((await call("GET", "/api/dlq", orgA)).json() as Array<{ id: string }>).map((j) => j.id)).toEqual(["p"]);
    const replay = await call("POST", "/api/dlq/replay", orgA, { ids: ["p", "other"] });
    expect(replay.json()).toMatchObject({ replayed: ["p"], restored: 2, skipped: [{ id: "other" }] });
    expect((await ctx.jobManager.getJob("t4:orgB:other"))?.status).toBe("failed");
    expect((await call("POST", "/api/dlq/replay", orgA, {})).statusCode).toBe(400);
    expect((await call("POST", "/api/jobs/p/cancel", orgA, { cascade: true })).json()).toMatchObject({ status: "cancelled" });
    expect((await ctx.jobManager.getJob("t4:orgA:q"))?.status).toBe("cancelled");
    expect((await call("POST", "/api/jobs/p/retry", orgA, { downstream: true })).json()).toMatchObject({ status: "pending" });
    expect((await ctx.jobManager.getJob("t4:orgA:q"))?.status).toBe("pending");
    expect((await call("POST", "/api/jobs/p/retry", orgA, { downstream: "yes" })).statusCode).toBe(400);
    expect((await call("POST", "/api/jobs/p/retry", orgA, {})).statusCode).toBe(409);
  });

  it("lists filter by name, schedule, parent and creation time, in the tenant's own ids; a job's steps are readable", async () => {
    expect((await call("POST", "/api/jobs", orgA, job("pa"))).statusCode).toBe(201);
    const between = new Date();
    await ctx.jobManager.createJobs([job("ch") as never], { parent: { id: "t4:orgA:pa", tenant: "orgA", taskId: null } });
    await ctx.jobManager.createJobs([job("other") as never], { parent: { id: "t4:orgB:pa", tenant: "orgB", taskId: null } });
    const ids = async (query: string, token = orgA) => ((await call("GET", `/api/jobs?${query}`, token)).json() as Array<{ id: string }>).map((j) => j.id).sort();
    expect(await ids("parentId=pa")).toEqual(["ch"]);
    expect(await ids("parentId=pa", orgB)).toEqual(["other"]); // orgB's own "pa"
    expect(await ids("name=pa")).toEqual(["pa"]);
    expect(await ids(`createdAfter=${encodeURIComponent(between.toISOString())}`)).toEqual(["ch"]);
    expect(await ids(`createdBefore=${encodeURIComponent(between.toISOString())}`)).toEqual(["pa"]);
    expect(await ids("scheduleName=nightly")).toEqual([]);
    expect((await call("GET", "/api/jobs?createdAfter=soon", orgA)).statusCode).toBe(400);
    await ctx.pool.query("INSERT INTO job_steps (job_id, name, attempt, result) VALUES ('t4:orgA:pa', 'fetch', 1, '[1,2]')");
    expect((await call("GET", "/api/jobs/pa/steps", orgA)).json()).toMatchObject([{ name: "fetch", attempt: 1, result: [1, 2] }]);
    expect((await call("GET", "/api/jobs/pa/steps", orgB)).statusCode).toBe(404);
  });

  it("tasks are created for the caller's tenant and hidden from others", async () => {
    const res = await call("POST", "/api/tasks", orgA, { name: "import", jobs: [job("t1"), job("t2")] });
    expect(res.statusCode).toBe(201);
    const task = res.json() as { id: string; tenant: string; totalJobs: number };
    expect(task).toMatchObject({ tenant: "orgA", totalJobs: 2 });
    expect((await call("GET", `/api/tasks/${task.id}`, orgA)).json()).toMatchObject({ percentDone: 0 });
    expect((await call("GET", `/api/tasks/${task.id}`, orgB)).statusCode).toBe(404);
    expect((await call("POST", "/api/tasks", orgB, { name: "x", tenant: "orgA", jobs: [job("t3")] })).statusCode).toBe(403);
    expect((await call("POST", "/api/tasks", orgA, { name: "x" })).statusCode).toBe(400);
  });
});

describe("bad queries and parameters", () => {
  it.each([
    ["GET", "/api/jobs?limit=0", "querystring.limit"],
    ["GET", "/api/jobs?status=lost", "querystring.status"],
    ["GET", "/api/jobs?colour=red", "querystring.colour"],
    ["GET", "/api/jobs/x/logs?after=abc", "querystring.after"],
    ["GET", "/api/dlq?since=yesterday", "querystring.since"],
    ["POST", "/api/tokens", "body.tenant"],
    ["PUT", "/api/rate-limits/k", "body.perSecond"],
    ["DELETE", "/api/tokens/NOT-AN-ID", "params.id"],
    ["POST", "/api/schedules", "body.name"],
  ] as Array<[Method, string, string]>)("%s %s gets 400 naming %s", async (method, url, field) => {
    const body = method === "POST" ? {} : method === "PUT" ? { perSecond: "fast" } : undefined;
    const res = await call(method, url, ADMIN, body);
    expect(res.statusCode).toBe(400);
    expect((res.json() as { field: string }).field).toBe(field);
  });
});

describe("operations (admin only)", () => {
  it("workers, schedules, rate limits and tokens: the admin may, a tenant gets 403", async () => {
    const adminOnly: Array<[Method, string, unknown?]> = [
      ["GET", "/api/workers"],
      ["GET", "/api/schedules"],
      ["POST", "/api/schedules", { name: "s", intervalSeconds: 60, jobTemplate: { jobType: "agent", payload: { agent_name: "noop" } } }],
      ["PUT", "/api/rate-limits/openai", { perSecond: 10 }],
      ["GET", "/api/tokens"],
      ["POST", "/api/tokens", { tenant: "orgC" }],
    ];
    for (const [method, url, body] of adminOnly) expect([url, (await call(method, url, orgA, body)).statusCode]).toEqual([url, 403]);
    for (const [method, url, body] of adminOnly) expect([url, (await call(method, url, ADMIN, body)).statusCode]).toEqual([url, method === "POST" ? 201 : 200]);
    expect((await call("POST", "/api/schedules/s/pause", ADMIN)).json()).toMatchObject({ paused: true });
    expect((await call("POST", "/api/schedules/s/resume", ADMIN)).json()).toMatchObject({ paused: false });
    expect((await call("DELETE", "/api/schedules/s", ADMIN)).statusCode).toBe(200);
    expect((await call("DELETE", "/api/schedules/s", ADMIN)).statusCode).toBe(404);
    expect((await call("POST", "/api/schedules", ADMIN, { name: "bad", cron: "nope", jobTemplate: { jobType: "agent" } })).json()).toMatchObject({ field: "cron" });
    expect((await call("PUT", "/api/rate-limits/openai", ADMIN, { perSecond: -5 })).statusCode).toBe(400);
    expect(((await call("GET", "/api/rate-limits", ADMIN)).json() as Array<{ key: string }>).map((l) => l.key)).toEqual(["openai"]);
    expect((await call("GET", "/api/rate-limits", orgA)).statusCode).toBe(403);
    const token = (await call("POST", "/api/tokens", ADMIN, { tenant: "orgD", name: "ci" })).json() as { token: string; id: string };
    expect((await call("GET", "/api/me", token.token)).json()).toEqual({ role: "tenant", tenant: "orgD" });
    expect((await call("DELETE", `/api/tokens/${token.id}`, ADMIN)).statusCode).toBe(200);
    expect((await call("GET", "/api/me", token.token)).statusCode).toBe(401);
    const stored = await ctx.pool.query("SELECT secret_hash FROM api_tokens WHERE id = $1", [token.id]);
    // The secret is base64url, so it may itself contain "_": take everything after the id.
    const secret = token.token.slice(`skt_${token.id}_`.length);
    expect(secret).toHaveLength(43);
    expect(JSON.stringify(stored.rows)).not.toContain(secret);
  });
});

describe("event streams", () => {
  /** Reads Server-Sent Events from a listening server until `until` says stop. */
  function readEvents(port: number, path: string, token: string, lastEventId: string | undefined, until: (events: Array<{ id: string; event: string; data: unknown }>) => boolean): Promise<Array<{ id: string; event: string; data: unknown }>> {
    return new Promise((resolveAll, rejectAll) => {
      const events: Array<{ id: string; event: string; data: unknown }> = [];
      const guard = setTimeout(() => {
        req.destroy();
        rejectAll(new Error(`timed out; got ${JSON.stringify(events)}`));
      }, 10_000);
      const resolve = (value: typeof events) => {
        clearTimeout(guard);
        resolveAll(value);
      };
      const reject = (error: Error) => {
        clearTimeout(guard);
        rejectAll(error);
      };
      const req = http.get({ port, path, headers: { authorization: `Bearer ${token}`, ...(lastEventId ? { "last-event-id": lastEventId } : {}) } }, (res) => {
        let buffer = "";
        res.on("data", (chunk: Buffer) => {
          buffer += chunk.toString();
          let end: number;
          while ((end = buffer.indexOf("\n\n")) >= 0) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const fields = Object.fromEntries(block.split("\n").filter((l) => /^(id|event|data): /.test(l)).map((l) => [l.slice(0, l.indexOf(":")), l.slice(l.indexOf(":") + 2)]));
            if (fields.data) events.push({ id: fields.id, event: fields.event, data: JSON.parse(fields.data) });
          }
          if (until(events)) {
            req.destroy();
            resolve(events);
          }
        });
      });
      req.on("error", (e) => (e.message.includes("socket hang up") ? resolve(events) : reject(e)));
    });
  }

  it("streams a job's state changes and log lines, and resumes after Last-Event-ID", async () => {
    const port = (app.server.address() as { port: number }).port;
    await call("POST", "/api/jobs", orgA, job("s1"));
    await ctx.pool.query("INSERT INTO job_logs (job_id, attempt, at, level, message) VALUES ('t4:orgA:s1', 1, now(), 'info', 'first line')");
    const first = await readEvents(port, "/api/jobs/s1/stream", orgA, undefined, (e) => e.some((x) => x.event === "log"));
    expect(first.map((e) => e.event)).toEqual(["job", "log"]);
    expect(first[0].data).toMatchObject({ id: "s1", status: "pending" });
    expect(first[1].data).toMatchObject({ message: "first line", jobId: "s1" });
    await ctx.pool.query("INSERT INTO job_logs (job_id, attempt, at, level, message) VALUES ('t4:orgA:s1', 1, now(), 'info', 'second line')");
    const resumed = await readEvents(port, "/api/jobs/s1/stream", orgA, first[1].id, (e) => e.length >= 1);
    expect(resumed.map((e) => (e.data as { message: string }).message)).toEqual(["second line"]);
    // The tenant stream: another tenant's changes never appear.
    const tenantEvents = readEvents(port, "/api/stream", orgB, undefined, (e) => e.some((x) => (x.data as { id: string }).id === "b-mine"));
    await new Promise((r) => setTimeout(r, 300));
    await call("POST", "/api/jobs", orgA, job("a-theirs"));
    await call("POST", "/api/jobs", orgB, job("b-mine"));
    const seen = await tenantEvents;
    expect(seen.map((e) => (e.data as { id: string }).id)).toEqual(["b-mine"]);
  });
});
