import type { FastifyInstance } from "fastify";
import http from "node:http";
import { PassThrough } from "node:stream";
import { createLogger, createPrismaClient, JobManager, Worker } from "../src";
import { createServer, createTenantToken } from "../src/server";
import { truncateAll, useTestDatabase } from "./helpers/db";
import { waitFor } from "./helpers/wait";

/**
 * The server as an attacker and a tenant under load meet it: closed by
 * default, strict input, tenant boundaries, exact live streams, no secret in
 * the log.
 */

const ctx = useTestDatabase();
const ADMIN = "admin-token-for-tests-0123456789";
let app: FastifyInstance;
let port: number;
let orgA: string;
let orgB: string;
const logLines: string[] = [];

beforeAll(async () => {
  const stream = new PassThrough();
  stream.on("data", (chunk: Buffer) => logLines.push(chunk.toString()));
  app = await createServer({ prisma: ctx.prisma, adminToken: ADMIN, logger: createLogger({ level: "debug", stream }) });
  await app.listen({ port: 0, host: "127.0.0.1" });
  port = (app.server.address() as { port: number }).port;
});
afterAll(() => app?.close());
beforeEach(async () => {
  await truncateAll(ctx.pool);
  await ctx.pool.query("TRUNCATE api_tokens, stream_tickets, stream_events, rate_limits, tasks, job_events, job_logs");
  orgA = (await createTenantToken(ctx.prisma, "orgA")).token;
  orgB = (await createTenantToken(ctx.prisma, "orgB")).token;
});

/** A raw HTTP request: any target (encoded, absolute-form), any method, the exact bytes sent. */
function raw(method: string, target: string, options: { token?: string; body?: string; headers?: Record<string, string> } = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { ...(options.headers ?? {}) };
    if (options.token) headers.authorization = `Bearer ${options.token}`;
    if (options.body !== undefined) headers["content-type"] ??= "application/json";
    const req = http.request({ host: "127.0.0.1", port, method, path: target, headers }, (res) => {
      let body = "";
      res.on("data", (c: Buffer) => (body += c.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", reject);
    if (options.body !== undefined) req.write(options.body);
    req.end();
  });
}
const json = (method: string, target: string, token?: string, body?: unknown) => raw(method, target, { token, body: body === undefined ? undefined : JSON.stringify(body) });
const job = (id: string, extra: Record<string, unknown> = {}) => ({ id, jobType: "agent", name: id, payload: { agent_name: "noop" }, ...extra });

interface Operation {
  method: string;
  path: string;
  access: "public" | "tenant" | "admin";
}

/** Every operation of the OpenAPI document, with the access rule its description states. */
async function operations(): Promise<Operation[]> {
  const spec = JSON.parse((await raw("GET", "/openapi.json")).body) as { paths: Record<string, Record<string, { description?: string }>> };
  return Object.entries(spec.paths).flatMap(([path, methods]) =>
    Object.entries(methods).map(([method, op]) => ({ method: method.toUpperCase(), path, access: /Access: public/.test(op.description ?? "") ? "public" : /admin token only/.test(op.description ?? "") ? "admin" : "tenant" }) as Operation),
  );
}
const concrete = (path: string) => path.replace(/\{[^}]+\}/g, "x1");

describe("closed by default", () => {
  it("every route declares who may call it, and one that does not stops the server", async () => {
    const ops = await operations();
    expect(ops.length).toBeGreaterThan(20);
    const routes: string[] = [];
    const probe = await createServer({ prisma: ctx.prisma, adminToken: ADMIN });
    probe.addHook("onRoute", (r) => void routes.push(`${String(r.method)} ${r.url} ${String(r.config?.access)}`));
    await expect(
      (async () => {
        probe.get("/api/forgotten", async () => ({ secret: true }));
        await probe.ready();
      })(),
    ).rejects.toThrow(/declares no access rule/);
    await probe.close().catch(() => undefined);
    for (const op of ops) expect(["public", "tenant", "admin"]).toContain(op.access);
    const spec = JSON.parse((await raw("GET", "/openapi.json")).body) as { paths: Record<string, Record<string, { description?: string }>> };
    for (const [path, methods] of Object.entries(spec.paths)) for (const [method, op] of Object.entries(methods)) expect({ op: `${method} ${path}`, rules: op.description?.match(/Access:/g)?.length }).toEqual({ op: `${method} ${path}`, rules: 1 });
  });

  it("without a token every non-public route answers 401 (and with a tenant token every admin route 403), however the target is written", async () => {
    for (const op of await operations()) {
      if (op.access === "public") continue;
      const target = concrete(op.path);
      for (const written of [target, `http://127.0.0.1:${port}${target}`, target.replace("/api/", "/%61pi/"), target.replace("/api/", "//api/")]) {
        const res = await raw(op.method, written, { body: op.method === "GET" || op.method === "DELETE" ? undefined : "{}" });
        expect({ op: `${op.method} ${written}`, status: res.status === 401 || res.status === 404 ? "refused" : res.status }).toEqual({ op: `${op.method} ${written}`, status: "refused" });
      }
      if (op.access === "admin") expect({ op: `${op.method} ${target}`, status: (await raw(op.method, target, { token: orgA, body: op.method === "GET" || op.method === "DELETE" ? undefined : "{}" })).status }).toEqual({ op: `${op.method} ${target}`, status: 403 });
    }
  });

  it("the rate limits are the admin's: anonymous callers and tenants get nothing", async () => {
    await json("PUT", "/api/rate-limits/openai", ADMIN, { perSecond: 5 });
    for (const target of ["/api/rate-limits", "/%61pi/rate-limits", `http://127.0.0.1:${port}/api/rate-limits`, "/api/rate-limits?x=1"]) {
      const anonymous = await raw("GET", target);
      expect(anonymous.status).not.toBe(200);
      expect(anonymous.body).not.toMatch(/openai/);
    }
    expect((await json("GET", "/api/rate-limits", orgA)).status).toBe(403);
    expect((await json("GET", "/api/rate-limits", ADMIN)).body).toMatch(/openai/);
  });

  it("/readyz tells anyone only ready or not", async () => {
    expect(JSON.parse((await raw("GET", "/readyz")).body)).toEqual({ ok: true });
    const dead = createPrismaClient("postgresql://skein:secret-password@127.0.0.1:1/nowhere");
    const down = await createServer({ prisma: dead });
    try {
      await down.listen({ port: 0, host: "127.0.0.1" });
      const res = await fetch(`http://127.0.0.1:${(down.server.address() as { port: number }).port}/readyz`);
      const body = await res.text();
      expect(res.status).toBe(503);
      expect(JSON.parse(body)).toEqual({ ok: false });
      expect(body).not.toMatch(/127\.0\.0\.1|secret-password|ECONNREFUSED/);
    } finally {
      await down.close();
      await dead.$disconnect();
    }
  });
});

describe("strict input", () => {
  it("refuses NUL bytes and lone surrogates wherever they come, with a 400 naming the field and nothing written", async () => {
    await json("POST", "/api/jobs", orgA, job("real"));
    const bodies: Array<[string, string, unknown]> = [
      ["POST", "/api/jobs", job("n1", { dependencies: ["a\u0000b"] })],
      ["POST", "/api/jobs", job("n2", { dependencies: [{ id: "a\u0000b" }] })],
      ["POST", "/api/graphs", { jobs: [job("n3", { dependencies: ["x\u0000"] })] }],
      ["POST", "/api/tasks", { name: "t", jobs: [job("n4", { dependencies: ["\u0000"] })] }],
      ["POST", "/api/dlq/replay", { ids: ["a\u0000b"] }],
      ["POST", "/api/jobs", job("n5", { name: "x\uD800" })],
      ["POST", "/api/jobs", { ...job("n6"), payload: { "k\u0000": 1 } }],
    ];
    for (const [method, target, body] of bodies) {
      const res = await json(method, target, orgA, body);
      expect({ target, status: res.status }).toEqual({ target, status: 400 });
      expect(JSON.parse(res.body).field).toEqual(expect.any(String));
    }
    for (const target of ["/api/jobs/a%00b", "/api/jobs/a%00b/events", "/api/jobs/a%00b/graph", "/api/jobs/a%00b/logs", "/api/jobs/a%00b/explain", "/api/jobs/a%00b/stream", "/api/jobs?queue=a%00b", "/api/jobs?tenant=a%00b", "/api/jobs/%ED%A0%80"]) {
      const res = await raw("GET", target, { token: orgA });
      expect({ target, status: res.status }).toEqual({ target, status: 400 });
    }
    expect((await raw("POST", "/api/jobs/a%00b/cancel", { token: orgA, body: "{}" })).status).toBe(400);
    const { rows } = await ctx.pool.query("SELECT count(*)::int AS n FROM jobs");
    expect(rows[0].n).toBe(1);
  });

  it("takes JSON types as they are: no string for a number, no scalar for a list, no null for a count", async () => {
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ name: true }, "name"],
      [{ name: ["x"] }, "name"],
      [{ maxRetries: "7" }, "maxRetries"],
      [{ maxRetries: null }, "maxRetries"],
      [{ tags: "gpu" }, "tags"],
      [{ priority: "1" }, "priority"],
      [{ payload: "text" }, "payload"],
    ];
    for (const [patch, field] of cases) {
      const res = await json("POST", "/api/jobs", orgA, { ...job("typed"), ...patch });
      expect({ patch, status: res.status }).toEqual({ patch, status: 400 });
      expect(JSON.parse(res.body).field).toContain(field);
    }
    expect((await json("GET", "/api/jobs?limit=5", orgA)).status).toBe(200); // a query string is text: coerced
    const { rows } = await ctx.pool.query("SELECT count(*)::int AS n FROM jobs");
    expect(rows[0].n).toBe(0);
  });

  it("answers an oversized body with a readable 413", async () => {
    const big = JSON.stringify({ ...job("big"), payload: { blob: "x".repeat(8 * 1024 * 1024) } });
    const res = await raw("POST", "/api/jobs", { token: orgA, body: big });
    expect(res.status).toBe(413);
    expect(JSON.parse(res.body)).toMatchObject({ error: "payload too large" });
  });
});

describe("tenant boundaries", () => {
  it("ids are each tenant's own: a clash with another tenant's id reveals nothing", async () => {
    expect((await json("POST", "/api/jobs", orgA, job("report"))).status).toBe(201);
    const b = await json("POST", "/api/jobs", orgB, job("report"));
    expect(b.status).toBe(201);
    expect(JSON.parse(b.body)).toMatchObject({ id: "report", tenant: "orgB" });
    expect((await json("POST", "/api/jobs", orgA, job("report"))).status).toBe(409);
    const aSees = JSON.parse((await json("GET", "/api/jobs/report", orgA)).body) as { tenant: string };
    expect(aSees.tenant).toBe("orgA");
    const graph = await json("POST", "/api/graphs", orgB, { jobs: [job("g1"), job("g2", { dependencies: ["g1", "report"] })] });
    expect(graph.status).toBe(201);
    expect((JSON.parse(graph.body) as { jobs: Array<{ dependencies: string[] }> }).jobs[1].dependencies).toEqual(["g1", "report"]);
    const admin = JSON.parse((await json("GET", "/api/jobs", ADMIN)).body) as Array<{ id: string }>;
    expect(admin.map((j) => j.id).sort()).toEqual(["t4:orgA:report", "t4:orgB:g1", "t4:orgB:g2", "t4:orgB:report"]);
    const task = await json("POST", "/api/tasks", orgB, { id: "t1", name: "t", jobs: [job("tj")] });
    expect(JSON.parse(task.body)).toMatchObject({ id: "t1" });
    expect((await json("POST", "/api/tasks", orgA, { id: "t1", name: "t", jobs: [job("tj")] })).status).toBe(201);
  });
});

describe("secrets", () => {
  it("no token or ticket appears in the log of a run that used them in headers and URLs", async () => {
    const ticket = (JSON.parse((await json("POST", "/api/stream-tickets", orgA)).body) as { ticket: string }).ticket;
    expect(ticket).toMatch(/^sst_/);
    await raw("GET", `/api/jobs/x%00/stream?ticket=${ticket}`);
    await raw("GET", `/api/stream?ticket=${ticket}&access_token=${orgA}`);
    await raw("GET", `/api/jobs?access_token=${orgA}`);
    await raw("GET", `/api/nothing?ticket=${ticket}`, { token: orgA });
    await json("POST", "/api/jobs", orgA, job("s1", { dependencies: ["missing"] }));
    const log = logLines.join("");
    for (const secret of [orgA.slice(4), ticket.slice(4), ADMIN]) expect(log).not.toContain(secret);
  });

  it("a request that fails with a 500 is logged with its URL's secrets redacted", async () => {
    const lines: string[] = [];
    const stream = new PassThrough();
    stream.on("data", (chunk: Buffer) => lines.push(chunk.toString()));
    const dead = createPrismaClient("postgresql://skein:secret-password@127.0.0.1:1/nowhere");
    const down = await createServer({ prisma: dead, adminToken: ADMIN, logger: createLogger({ level: "debug", stream }) });
    const fakeTenant = `skt_0123456789abcdef_${"tenantsecretvalue42".padEnd(43, "t")}`;
    const fakeTicket = `sst_${"ticketsecretvalue42".padEnd(43, "k")}`;
    try {
      await down.listen({ port: 0, host: "127.0.0.1" });
      const at = `http://127.0.0.1:${(down.server.address() as { port: number }).port}`;
      expect((await fetch(`${at}/api/stream?ticket=${fakeTicket}`)).status).toBe(500);
      expect((await fetch(`${at}/api/jobs/x/stream?ticket=${fakeTicket}&access_token=${fakeTenant}`)).status).toBe(500);
      expect((await fetch(`${at}/api/jobs`, { headers: { authorization: `Bearer ${fakeTenant}` } })).status).toBe(500);
    } finally {
      await down.close();
      await dead.$disconnect();
    }
    const log = lines.join("");
    expect(log).toMatch(/request failed/);
    expect(log).toContain("ticket=***");
    for (const secret of [ADMIN, "ticketsecretvalue42", "tenantsecretvalue42", "secret-password"]) expect(log).not.toContain(secret);
  });

  it("a ticket opens streams for a minute and is worth nothing elsewhere", async () => {
    const ticket = (JSON.parse((await json("POST", "/api/stream-tickets", orgA)).body) as { ticket: string }).ticket;
    expect((await raw("GET", `/api/jobs?ticket=${ticket}`)).status).toBe(401);
    const res = await new Promise<number>((resolve) => {
      const req = http.get({ host: "127.0.0.1", port, path: `/api/stream?ticket=${ticket}` }, (r) => {
        resolve(r.statusCode ?? 0);
        req.destroy();
      });
      req.on("error", () => undefined);
    });
    expect(res).toBe(200);
    await ctx.pool.query("UPDATE stream_tickets SET expires_at = now() - interval '1 second'");
    expect((await raw("GET", `/api/stream?ticket=${ticket}`)).status).toBe(401);
  });
});

/** Reads an event stream into `events` until `stop`; reconnects with Last-Event-ID after `cutAfter` events each time. */
function follow(path: string, token: string, events: Array<{ id: string; event: string; data: { id: string; status: string } }>, cutAfter: () => number): { stop(): void; reconnects: () => number } {
  let last: string | undefined;
  let stopped = false;
  let reconnects = 0;
  let current: http.ClientRequest | undefined;
  const connect = () => {
    if (stopped) return;
    let seen = 0;
    const limit = cutAfter();
    current = http.get({ host: "127.0.0.1", port, path, headers: { authorization: `Bearer ${token}`, ...(last ? { "last-event-id": last } : {}) } }, (res) => {
      let buffer = "";
      res.on("data", (chunk: Buffer) => {
        buffer += chunk.toString();
        let cut: number;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          const fields = Object.fromEntries(block.split("\n").filter((l) => /^(id|event|data): /.test(l)).map((l) => [l.slice(0, l.indexOf(":")), l.slice(l.indexOf(":") + 2)]));
          if (fields.id === undefined) continue;
          events.push({ id: fields.id, event: fields.event, data: JSON.parse(fields.data) });
          last = fields.id;
          if (++seen >= limit) {
            reconnects++;
            current?.destroy();
            return;
          }
        }
      });
      res.on("close", () => setTimeout(connect, 5));
    });
    current.on("error", () => undefined);
  };
  connect();
  return {
    stop() {
      stopped = true;
      current?.destroy();
    },
    reconnects: () => reconnects,
  };
}

describe("exact live streams", () => {
  it("each tenant's stream delivers every state change once and in order, under 40 concurrent submitters and clients that reconnect", async () => {
    const tenants = ["t1", "t2", "t3"];
    const tokens = Object.fromEntries(await Promise.all(tenants.map(async (t) => [t, (await createTenantToken(ctx.prisma, t)).token] as const)));
    const seen: Record<string, Array<{ id: string; event: string; data: { id: string; status: string } }>> = Object.fromEntries(tenants.map((t) => [t, []]));
    const streams = tenants.map((t) => follow("/api/stream", tokens[t], seen[t], () => 20 + Math.floor(Math.random() * 60)));
    await new Promise((resolve) => setTimeout(resolve, 300)); // the streams start from now
    const worker = new Worker({ prisma: ctx.prisma, maxConcurrentJobs: 8, prefetch: 16, pollInterval: 0.2 });
    await worker.start();
    const perTenant = 150;
    try {
      await Promise.all(
        Array.from({ length: 40 }, async (_, s) => {
          for (let k = s; k < perTenant * tenants.length; k += 40) {
            const tenant = tenants[k % tenants.length];
            const res = await json("POST", "/api/jobs", tokens[tenant], job(`j${k}`));
            if (res.status !== 201) throw new Error(`create failed: ${res.status} ${res.body}`);
          }
        }),
      );
      await waitFor(async () => (await ctx.pool.query("SELECT count(*)::int AS n FROM job_history")).rows[0].n === perTenant * tenants.length, "every job", 60_000);
      await waitFor(async () => tenants.every((t) => seen[t].filter((e) => e.data.status === "completed").length >= perTenant), "the streams to catch up", 20_000).catch(() => undefined);
      await new Promise((resolve) => setTimeout(resolve, 800));
    } finally {
      for (const s of streams) s.stop();
      await worker.stop();
    }
    for (const t of tenants) {
      const events = seen[t].filter((e) => e.event === "job");
      const ids = events.map((e) => e.id);
      expect({ tenant: t, duplicates: ids.length - new Set(ids).size }).toEqual({ tenant: t, duplicates: 0 });
      const byJob = new Map<string, string[]>();
      for (const e of events) byJob.set(e.data.id, [...(byJob.get(e.data.id) ?? []), e.data.status]);
      expect({ tenant: t, jobs: byJob.size }).toEqual({ tenant: t, jobs: perTenant });
      for (const [id, statuses] of byJob) expect({ tenant: t, id, statuses }).toEqual({ tenant: t, id, statuses: ["pending", "running", "completed"] });
    }
    expect(streams.reduce((n, s) => n + s.reconnects(), 0)).toBeGreaterThan(10);
  }, 120_000);

  it("a job's stream gives its whole story from the start, then follows it", async () => {
    const manager = new JobManager(ctx.prisma);
    await json("POST", "/api/jobs", orgA, job("story"));
    const events: Array<{ id: string; event: string; data: { id: string; status: string } }> = [];
    const s = follow("/api/jobs/story/stream", orgA, events, () => 1); // reconnects after every event
    const worker = new Worker({ prisma: ctx.prisma, pollInterval: 0.2, agentRegistry: { noop: async (_p, c) => void c.log.info("hello") } });
    await worker.start();
    try {
      await waitFor(async () => (await manager.getJob("t4:orgA:story"))?.status === "completed", "the job");
      await waitFor(async () => events.some((e) => e.event === "job" && e.data.status === "completed"), "its stream");
    } finally {
      s.stop();
      await worker.stop();
    }
    expect(events.filter((e) => e.event === "job").map((e) => e.data.status)).toEqual(["pending", "running", "completed"]);
    expect(events.filter((e) => e.event === "log")).toHaveLength(1);
    expect(new Set(events.map((e) => e.id)).size).toBe(events.length);
  });
});
