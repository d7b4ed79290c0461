import net from "node:net";
import { PassThrough } from "node:stream";
import type { FastifyInstance } from "fastify";
import fc from "fast-check";
import pg from "pg";
import { createLogger, createPrismaClient, type PrismaClient } from "../../src";
import { createServer, createTenantToken } from "../../src/server";
import { budget } from "./helpers/budget";
import { seed as runSeedOf } from "./helpers/graph";
import { describeViolations, writeReport } from "./helpers/report";
import { createDatabase, dropDatabase, sharedAdminUrl } from "./helpers/server";

/**
 * Generated HTTP requests against every operation of the server's own OpenAPI
 * document, as an attacker sends them: encoded and absolute-form targets,
 * doubled slashes and dot segments, odd and unknown methods, every kind of
 * credential (none, wrong, another tenant's, the admin's, a ticket), path and
 * query values with NUL bytes, lone surrogates, SQL and 20,000 characters,
 * bodies built from each operation's schema with wrong types, missing and
 * extra fields, malformed JSON, other content types and oversized bodies.
 * Each request goes over a raw socket, byte for byte. The contract:
 *  - `http`: every request gets an HTTP reply, and never a 5xx;
 *  - `http`: a refused request (4xx) writes nothing: every table of Skein's
 *    schema (but a token's last-used time) is the same before and after;
 *  - `http`: no reply carries a stack trace or a database address.
 */
const B = budget().httpRequests;
const ADMIN = "chaos-admin-token-0123456789abcdef";
const HOST = "127.0.0.1";

let url: string;
let pool: pg.Pool;
let prisma: PrismaClient;
let app: FastifyInstance;
let port: number;
let spec: OpenApi;
let fingerprintSql: string;
const violations: string[] = [];
const seen = new Set<string>();
const figures: Record<string, number> = {};
const count = (what: string) => (figures[what] = (figures[what] ?? 0) + 1);
let requests = 0;
/** Requests per operation of the OpenAPI document. */
const tried = new Map<string, number>();
const started = Date.now();
const runSeed = runSeedOf();
/** Credentials and ids of the current fixtures (recreated by seed()). */
let fixtures: { orgA: string; orgB: string; revoked: string; ticket: string; victimTokenId: string };

interface Parameter {
  name: string;
  in: "path" | "query";
  schema: Schema;
}
interface Operation {
  method: string;
  path: string;
  parameters: Parameter[];
  body?: Schema;
}
interface OpenApi {
  paths: Record<string, Record<string, { parameters?: Parameter[]; requestBody?: { content: Record<string, { schema: Schema }> } }>>;
}
interface Schema {
  type?: string;
  anyOf?: Schema[];
  enum?: unknown[];
  properties?: Record<string, Schema>;
  required?: string[];
  items?: Schema;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  format?: string;
  nullable?: boolean;
}

beforeAll(async () => {
  url = await createDatabase(sharedAdminUrl(), "http");
  pool = new pg.Pool({ connectionString: url, max: 2 });
  prisma = createPrismaClient(url, { maxConnections: 4 });
  const stream = new PassThrough();
  stream.resume();
  app = await createServer({ prisma, adminToken: ADMIN, logger: createLogger({ level: "error", stream }) });
  await app.listen({ port: 0, host: HOST });
  port = (app.server.address() as net.AddressInfo).port;
  const res = await send({ method: "GET", target: "/openapi.json", headers: {} });
  spec = JSON.parse(res.body) as OpenApi;
  fingerprintSql = await buildFingerprint();
  await seed();
});

afterAll(async () => {
  writeReport({
    scenario: "http-requests",
    budget: budget().name,
    startedAt: new Date(started).toISOString(),
    durationSeconds: (Date.now() - started) / 1000,
    jobs: 0,
    faults: {},
    inputs: requests,
    seed: runSeed,
    figures: {
      "operations of the OpenAPI document": tried.size,
      "fewest requests to one operation": Math.min(...tried.values()),
      ...Object.fromEntries(Object.entries(figures).sort()),
    },
    violations,
  });
  await app?.close();
  await prisma?.$disconnect();
  await pool?.end();
  if (url) await dropDatabase(url);
});

// ---------------------------------------------------------------------------------------------
// Fixtures and the database's fingerprint

/** Empties Skein's tables and creates what requests can find: jobs of two tenants and none, a schedule, a rate limit, tokens, a ticket. */
async function seed(): Promise<void> {
  const { rows } = await pool.query<{ table_name: string }>("SELECT table_name FROM information_schema.tables WHERE table_schema = 'skein' AND table_name <> '_prisma_migrations'");
  await pool.query(`TRUNCATE ${rows.map((r) => `skein.${r.table_name}`).join(", ")} CASCADE`);
  const orgA = (await createTenantToken(prisma, "orgA")).token;
  const orgB = (await createTenantToken(prisma, "orgB")).token;
  const victim = await createTenantToken(prisma, "orgC");
  const gone = await createTenantToken(prisma, "orgA");
  const admin = { authorization: `Bearer ${ADMIN}` };
  const post = async (path: string, token: string, body: unknown, method = "POST") => {
    const res = await send({ method, target: path, headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: Buffer.from(JSON.stringify(body)) });
    if (res.status >= 300) throw new Error(`seed: ${method} ${path} answered ${res.status}: ${res.body.slice(0, 300)}`);
    return JSON.parse(res.body) as Record<string, unknown>;
  };
  const job = (id: string, extra: Record<string, unknown> = {}) => ({ id, jobType: "agent", name: id, payload: { agent_name: "noop" }, ...extra });
  await post("/api/jobs", orgA, job("a1"));
  await post("/api/graphs", orgA, { jobs: [job("a2", { dependencies: ["a1"] }), job("a3", { dependencies: [{ id: "a2", onFailure: "ignore" }] })] });
  await post("/api/jobs", orgB, job("b1"));
  await post("/api/jobs", ADMIN, job("plain"));
  await post("/api/tasks", orgA, { id: "task1", name: "task", jobs: [job("ta1")] });
  await post("/api/jobs/a3/cancel", orgA, {});
  await post("/api/schedules", ADMIN, { name: "nightly", cron: "0 3 * * *", jobTemplate: { jobType: "agent", name: "nightly", payload: { agent_name: "noop" } } });
  await post("/api/rate-limits/openai", ADMIN, { perSecond: 5 }, "PUT");
  await send({ method: "DELETE", target: `/api/tokens/${gone.id}`, headers: admin });
  const ticket = String((await post("/api/stream-tickets", orgA, {})).ticket);
  fixtures = { orgA, orgB, revoked: gone.token, ticket, victimTokenId: victim.id };
}

/** One query that hashes every row of every Skein table (a token's last_used_at aside: authenticating records it). */
async function buildFingerprint(): Promise<string> {
  const { rows } = await pool.query<{ table_name: string; columns: string[] }>(
    `SELECT table_name, array_agg(column_name::text ORDER BY column_name) AS columns FROM information_schema.columns
     WHERE table_schema = 'skein' AND table_name <> '_prisma_migrations' AND NOT (table_name = 'api_tokens' AND column_name = 'last_used_at')
     GROUP BY table_name ORDER BY table_name`,
  );
  return rows
    .map((r) => {
      const row = `md5(row(${r.columns.map((c) => `t.${pg.escapeIdentifier(c)}`).join(", ")})::text)`;
      return `SELECT '${r.table_name}' AS t, count(*) || ':' || coalesce(md5(string_agg(${row}, '' ORDER BY ${row})), '') AS f FROM skein.${pg.escapeIdentifier(r.table_name)} t`;
    })
    .join(" UNION ALL ");
}

async function fingerprint(): Promise<Map<string, string>> {
  const { rows } = await pool.query<{ t: string; f: string }>(fingerprintSql);
  return new Map(rows.map((r) => [r.t, r.f]));
}

// ---------------------------------------------------------------------------------------------
// Raw requests

interface RawRequest {
  method: string;
  target: string;
  headers: Record<string, string>;
  body?: Buffer;
}
interface RawReply {
  status: number;
  body: string;
}

/** Sends exactly these bytes and reads the reply (an event stream's reply ends at its headers). Status 0: no reply. */
function send(request: RawRequest): Promise<RawReply> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: HOST, port });
    const chunks: Buffer[] = [];
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      const text = Buffer.concat(chunks).toString("utf8");
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(text);
      const split = text.indexOf("\r\n\r\n");
      resolve({ status: status ? Number(status[1]) : 0, body: split < 0 ? "" : text.slice(split + 4) });
    };
    const timer = setTimeout(finish, 20_000);
    socket.on("data", (chunk: Buffer) => {
      chunks.push(chunk);
      const text = Buffer.concat(chunks).toString("latin1");
      const end = text.indexOf("\r\n\r\n");
      if (end >= 0 && /\r\ncontent-type: text\/event-stream/i.test(text.slice(0, end + 2))) finish();
    });
    socket.on("end", finish);
    socket.on("close", finish);
    socket.on("error", finish);
    const headers = { host: `${HOST}:${port}`, connection: "close", ...request.headers, ...(request.body ? { "content-length": String(request.body.length) } : {}) };
    const head = `${request.method} ${request.target} HTTP/1.1\r\n${Object.entries(headers)
      .map(([k, v]) => `${k}: ${v}`)
      .join("\r\n")}\r\n\r\n`;
    socket.write(Buffer.concat([Buffer.from(head, "utf8"), request.body ?? Buffer.alloc(0)]));
  });
}

// ---------------------------------------------------------------------------------------------
// Generators

const NASTY = ["\u0000", "a\u0000b", "\ud800", "x\udfff", "'; DROP TABLE jobs; --", "..", "../..", "%", "%00", "%ZZ", "a/b", "__proto__", "constructor", "\u202e", "🙂", "", " ", "t4:orgA:a1", "t4:orgB:b1"];
const KNOWN = ["a1", "a2", "a3", "b1", "plain", "task1", "ta1", "nightly", "openai", "missing"];
/** Any string: known ids, short strange text, lone surrogates and NUL, or very long. */
const text = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...KNOWN) },
  { weight: 3, arbitrary: fc.string({ unit: "binary", maxLength: 30 }) },
  { weight: 2, arbitrary: fc.constantFrom(...NASTY) },
  { weight: 1, arbitrary: fc.string({ unit: "grapheme-ascii", maxLength: 20 }) },
  { weight: 1, arbitrary: fc.constantFrom(300, 5000, 20_000).map((n) => "x".repeat(n)) },
);
/** A wrong value for any field. */
const wrong = fc.constantFrom<unknown>(null, true, 0, -1, 1.5, 1e300, "7", "", "\u0000", "\ud800", [], ["x"], {}, { $ne: 1 });

/** `arb` one time in ten, otherwise null. */
const rarely = <T>(arb: fc.Arbitrary<T>): fc.Arbitrary<T | null> => fc.oneof({ weight: 9, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: arb });

/** Values for `schema`: mostly of its shape, sometimes wrong, missing or extra. */
function fromSchema(schema: Schema | undefined, depth = 0): fc.Arbitrary<unknown> {
  if (!schema || depth > 4) return fc.jsonValue({ maxDepth: 2 });
  const right = shaped(schema, depth);
  return fc.oneof({ weight: 12, arbitrary: right }, { weight: 1, arbitrary: wrong }, ...(schema.nullable ? [{ weight: 1, arbitrary: fc.constant(null) }] : []));
}

function shaped(schema: Schema, depth: number): fc.Arbitrary<unknown> {
  if (schema.anyOf) return fc.oneof(...schema.anyOf.map((s) => fromSchema(s, depth)));
  if (schema.enum) return fc.constantFrom(...schema.enum);
  switch (schema.type) {
    case "string":
      if (schema.format === "date-time") return fc.oneof(fc.date({ noInvalidDate: true }).map((d) => d.toISOString()), text);
      return fc.oneof({ weight: 3, arbitrary: fc.string({ minLength: schema.minLength ?? 0, maxLength: Math.min(schema.maxLength ?? 40, 40) }) }, { weight: 2, arbitrary: text });
    case "integer":
    case "number": {
      const min = schema.minimum ?? -1e6;
      const max = schema.maximum ?? 1e6;
      return fc.oneof(fc.integer({ min: Math.max(min, -(2 ** 31)), max: Math.min(max, 2 ** 31 - 1) }), fc.constantFrom(min - 1, max + 1, min, max));
    }
    case "boolean":
      return fc.boolean();
    case "array":
      return fc.array(fromSchema(schema.items, depth + 1), { maxLength: 4 });
    case "object": {
      if (!schema.properties) return fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 4 });
      const required = new Set(schema.required ?? []);
      const fields = Object.fromEntries(Object.entries(schema.properties).map(([k, s]) => [k, fromSchema(s, depth + 1)]));
      return fc
        .tuple(
          fc.record(fields, { requiredKeys: [...required].filter((k) => k in fields) }),
          rarely(fc.constantFrom(...Object.keys(fields))),
          rarely(fc.tuple(fc.constantFrom("extra", "__proto__", "constructor", "id\u0000"), fc.jsonValue({ maxDepth: 1 }))),
        )
        .map(([record, drop, extra]) => {
          const out: Record<string, unknown> = { ...record };
          if (drop !== null) delete out[drop];
          if (extra !== null) Object.defineProperty(out, extra[0], { value: extra[1], enumerable: true, configurable: true, writable: true });
          return out;
        });
    }
    default:
      return fc.jsonValue({ maxDepth: 2 });
  }
}

/** Percent-encodes any string, lone surrogates included (as the bytes a lax encoder would write). */
function encode(value: string): string {
  let out = "";
  for (const ch of value) {
    try {
      out += encodeURIComponent(ch);
    } catch {
      const c = ch.charCodeAt(0);
      out += [0xe0 | (c >> 12), 0x80 | ((c >> 6) & 0x3f), 0x80 | (c & 0x3f)].map((b) => `%${b.toString(16).toUpperCase()}`).join("");
    }
  }
  return out;
}

const METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE", "PROPFIND", "CONNECT", "FOO", "get"];
const FORMS = ["origin", "absolute", "encoded", "double-slash", "dot-segment", "trailing-slash", "upper", "raw"] as const;

interface Plan {
  op: Operation;
  method: string;
  form: (typeof FORMS)[number];
  params: string[];
  query: Array<[string, string]>;
  auth: string;
  body: { kind: "json" | "malformed" | "none" | "huge" | "form"; value?: unknown; contentType: string };
}

function plans(ops: Operation[]): fc.Arbitrary<Plan> {
  return fc.constantFrom(...ops).chain((op) => {
    const pathParams = op.parameters.filter((p) => p.in === "path");
    const queryNames = op.parameters.filter((p) => p.in === "query").map((p) => p.name);
    return fc.record({
      op: fc.constant(op),
      method: fc.oneof({ weight: 8, arbitrary: fc.constant(op.method) }, { weight: 1, arbitrary: fc.constantFrom(...METHODS) }),
      form: fc.oneof({ weight: 6, arbitrary: fc.constant("origin" as const) }, { weight: 4, arbitrary: fc.constantFrom(...FORMS) }),
      params: fc.tuple(...pathParams.map(() => text)).map((values) => values.map(String)),
      query: fc.array(fc.tuple(fc.oneof(fc.constantFrom(...queryNames, "ticket", "lastEventId", "access_token", "__proto__", "limit[]"), fc.string({ maxLength: 6 })), fc.oneof(text, fc.integer().map(String))), { maxLength: 3 }),
      auth: fc.oneof({ weight: 3, arbitrary: fc.constantFrom("admin", "orgA", "orgB") }, { weight: 1, arbitrary: fc.constantFrom("none", "revoked", "garbage", "basic", "bearer-empty", "long") }),
      body: op.body
        ? fc.oneof(
            { weight: 10, arbitrary: fromSchema(op.body).map((value) => ({ kind: "json" as const, value, contentType: "application/json" })) },
            { weight: 1, arbitrary: fc.constantFrom("{", "[1,", '{"a":}', "\u0000", "nul\u0000l", '{"id":"\\ud800"}', '{"id":"\\u0000"}').map((value) => ({ kind: "malformed" as const, value, contentType: "application/json" })) },
            { weight: 1, arbitrary: fc.constantFrom("text/plain", "application/x-www-form-urlencoded", "application/json; charset=latin1", "multipart/form-data; boundary=x").map((contentType) => ({ kind: "form" as const, value: "a=1&b=2", contentType })) },
            { weight: 1, arbitrary: fc.constant({ kind: "none" as const, contentType: "application/json" }) },
            { weight: 1, arbitrary: fc.constant({ kind: "huge" as const, contentType: "application/json" }) },
          )
        : fc.oneof({ weight: 6, arbitrary: fc.constant({ kind: "none" as const, contentType: "" }) }, { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }).map((value) => ({ kind: "json" as const, value, contentType: "application/json" })) }),
    });
  });
}

function toRequest(plan: Plan): RawRequest {
  let i = 0;
  const raw = plan.form === "raw";
  let path = plan.op.path.replace(/\{[^}]+\}/g, () => (raw ? plan.params[i++] : encode(plan.params[i++])));
  if (plan.form === "encoded") path = path.replace("/api/", "/%61pi/").replace("/jobs", "/j%6fbs");
  if (plan.form === "double-slash") path = path.replace("/api/", "//api//");
  if (plan.form === "dot-segment") path = path.replace("/api/", "/api/./x/../");
  if (plan.form === "trailing-slash") path += "/";
  if (plan.form === "upper") path = path.toUpperCase();
  const query = plan.query.map(([k, v]) => `${encode(k)}=${k === "ticket" && v === "a1" ? fixtures.ticket : raw ? v : encode(v)}`).join("&");
  let target = query ? `${path}?${query}` : path;
  if (plan.form === "absolute") target = `http://${HOST}:${port}${target}`;
  const tokens: Record<string, string | undefined> = {
    none: undefined,
    admin: `Bearer ${ADMIN}`,
    orgA: `Bearer ${fixtures.orgA}`,
    orgB: `Bearer ${fixtures.orgB}`,
    revoked: `Bearer ${fixtures.revoked}`,
    garbage: "Bearer skt_0000000000000000_nope",
    basic: "Basic YWRtaW46YWRtaW4=",
    "bearer-empty": "Bearer ",
    long: `Bearer ${"x".repeat(8000)}`,
  };
  const headers: Record<string, string> = {};
  if (tokens[plan.auth] !== undefined) headers.authorization = tokens[plan.auth] as string;
  if (plan.body.contentType) headers["content-type"] = plan.body.contentType;
  let body: Buffer | undefined;
  if (plan.body.kind === "json") body = Buffer.from(JSON.stringify(plan.body.value) ?? "null");
  if (plan.body.kind === "malformed" || plan.body.kind === "form") body = Buffer.from(String(plan.body.value));
  if (plan.body.kind === "huge") body = Buffer.from(JSON.stringify({ jobType: "agent", name: "huge", payload: { blob: "x".repeat(3 * 1024 * 1024) } }));
  return { method: plan.method, target, headers, body };
}

function describeRequest(plan: Plan, request: RawRequest): string {
  const target = request.target.length > 160 ? `${request.target.slice(0, 160)}...` : request.target;
  const body = request.body ? ` body ${request.body.length > 200 ? `${request.body.length} bytes` : JSON.stringify(request.body.toString())}` : "";
  return `${request.method} ${JSON.stringify(target)} (${plan.op.method} ${plan.op.path}, ${plan.form}, auth ${plan.auth})${body}`;
}

/** Records a violation once per kind of failure (operation, method, form and what went wrong). */
function violation(key: string, message: string): void {
  count("violations");
  if (seen.has(key) || violations.length >= 50) return;
  seen.add(key);
  violations.push(`http: ${message}`);
}

const LEAKS = /\n\s+at .+:\d+:\d+|postgres(?:ql)?:\/\/|ECONNREFUSED|invalid byte sequence|\bprisma\b.*invocation/i;

async function check(plan: Plan): Promise<void> {
  const request = toRequest(plan);
  const before = await fingerprint();
  const reply = await send(request);
  requests++;
  const what = describeRequest(plan, request);
  const key = `${plan.op.method} ${plan.op.path} ${request.method} ${plan.form}`;
  count(`status ${reply.status === 0 ? "no reply" : `${String(reply.status)[0]}xx`}`);
  count(`form: ${plan.form}`);
  tried.set(`${plan.op.method} ${plan.op.path}`, (tried.get(`${plan.op.method} ${plan.op.path}`) ?? 0) + 1);
  // Node's HTTP server closes a CONNECT it has no handler for: that is not the application's answer.
  if (reply.status === 0 && request.method !== "CONNECT") violation(`${key} noreply`, `no reply to ${what}`);
  if (reply.status >= 500) violation(`${key} ${reply.status}`, `${reply.status} for ${what}: ${reply.body.slice(0, 300)}`);
  if (LEAKS.test(reply.body)) violation(`${key} leak`, `the reply to ${what} leaks internals: ${reply.body.slice(0, 300)}`);
  if (reply.status >= 400 || reply.status === 0) {
    const after = await fingerprint();
    const changed = [...after].filter(([t, f]) => before.get(t) !== f).map(([t]) => t);
    if (changed.length > 0) violation(`${key} wrote`, `${reply.status} for ${what}, yet it changed ${changed.join(", ")}`);
  }
}

// ---------------------------------------------------------------------------------------------

it("every generated request to every route gets a reply, never a 5xx, and a refused one writes nothing", async () => {
  const ops: Operation[] = Object.entries(spec.paths).flatMap(([path, methods]) =>
    Object.entries(methods).map(([method, op]) => ({
      method: method.toUpperCase(),
      path,
      parameters: op.parameters ?? [],
      body: op.requestBody?.content["application/json"]?.schema,
    })),
  );
  expect(ops.length).toBeGreaterThan(30);
  let sinceSeed = 0;
  await fc.assert(
    fc.asyncProperty(plans(ops), async (plan) => {
      if (++sinceSeed > B.reseedEvery) {
        sinceSeed = 0;
        await seed();
      }
      await check(plan);
    }),
    { numRuns: B.requests, seed: runSeed, interruptAfterTimeLimit: B.deadlineMs, endOnFailure: true },
  );
  // Every operation of the document was tried.
  for (const op of ops) expect({ op: `${op.method} ${op.path}`, tried: tried.has(`${op.method} ${op.path}`) }).toEqual({ op: `${op.method} ${op.path}`, tried: true });
  if (violations.length > 0) throw new Error(describeViolations(violations));
});
