import swagger from "@fastify/swagger";
import Fastify, { type FastifyInstance, type FastifyRequest } from "fastify";
import { databaseFor, type RawQueryClient } from "../db/database";
import { JobManager } from "../jobs/JobManager";
import { silentLogger, type Logger } from "../core/logger";
import type { Worker } from "../worker/Worker";
import { authenticate, skeinClient, type Principal } from "./auth";
import { serverContext } from "./context";
import { errorHandler, HttpError } from "./errors";
import { Metrics } from "./metrics";
import { jobRoutes } from "./routes/jobs";
import { opsRoutes } from "./routes/ops";
import { streamRoutes } from "./routes/stream";
import { uiRoutes } from "./ui";

export { createTenantToken, listTenantTokens, revokeTenantToken, type ApiToken, type Principal } from "./auth";

/** Options for {@link createServer}. */
export interface ServerOptions {
  /** A client from `createPrismaClient`. */
  prisma: RawQueryClient;
  /** The schema of Skein's tables. @defaultValue the client's */
  schema?: string;
  /** The admin token (`SKEIN_ADMIN_TOKEN`): sees and steers every tenant. Without it only tenant tokens work. */
  adminToken?: string;
  /** @defaultValue a silent logger */
  logger?: Logger;
  /** Workers in this process, observed for the latency histograms of /metrics. */
  workers?: Worker[];
  /** Largest request body, in bytes. @defaultValue 2 MiB */
  bodyLimit?: number;
}

/**
 * The HTTP API, event streams, Prometheus metrics and dashboard, as a Fastify
 * instance (not listening yet: call `listen`). Every `/api` route and
 * `/metrics` need a bearer token: the admin token, or a tenant token that
 * sees and changes only its tenant's jobs.
 */
export async function createServer(options: ServerOptions): Promise<FastifyInstance> {
  const logger = options.logger ?? silentLogger();
  if (options.adminToken !== undefined && options.adminToken.length < 16) throw new Error("the admin token must be at least 16 characters");
  const prisma = skeinClient(options.prisma);
  const db = databaseFor(prisma, options.schema);
  const jobManager = new JobManager(options.prisma, { schema: db.schema.name, logger });
  // forceCloseConnections: close() also ends open event streams.
  const app = Fastify({ bodyLimit: options.bodyLimit ?? 2 * 1024 * 1024, logger: false, forceCloseConnections: true, ajv: { customOptions: { allErrors: false, coerceTypes: "array", removeAdditional: false } } });
  await app.register(swagger, {
    openapi: {
      openapi: "3.0.3",
      info: { title: "Skein API", version: "0.1.0", description: "Jobs, graphs, streams and operations of a Skein job manager. Bearer token: the admin token or a tenant token." },
      components: { securitySchemes: { bearer: { type: "http", scheme: "bearer" } } },
      security: [{ bearer: [] }],
    },
  });
  app.setErrorHandler(errorHandler(logger));
  app.addHook("onRequest", async (request: FastifyRequest) => {
    const path = request.url.split("?")[0];
    if (!path.startsWith("/api/") && path !== "/metrics") return;
    const principal = await authenticate(prisma, tokenOf(request), options.adminToken);
    if (!principal) throw new HttpError(401, "a valid bearer token is needed (the admin token or a tenant token)");
    (request as FastifyRequest & { principal?: Principal }).principal = principal;
  });

  const ctx = serverContext(jobManager, db, prisma);
  const metrics = new Metrics(db, jobManager);
  for (const worker of options.workers ?? []) metrics.observe(worker);

  app.get("/healthz", { schema: { tags: ["health"], summary: "The process is up", security: [] } }, async () => ({ ok: true }));
  app.get("/readyz", { schema: { tags: ["health"], summary: "The database answers", security: [] } }, async (_request, reply) => {
    try {
      await db.query("SELECT 1");
      return { ok: true };
    } catch (error) {
      reply.status(503);
      return { ok: false, error: String(error) };
    }
  });
  app.get("/metrics", { schema: { tags: ["health"], summary: "Prometheus metrics (admin)" } }, async (request, reply) => {
    if ((request as FastifyRequest & { principal?: Principal }).principal?.kind !== "admin") {
      reply.status(403);
      return { error: "forbidden", message: "this needs the admin token" };
    }
    reply.header("content-type", metrics.registry.contentType);
    return metrics.registry.metrics();
  });
  app.get("/openapi.json", { schema: { hide: true } }, async () => app.swagger());
  await jobRoutes(app, ctx);
  await opsRoutes(app, ctx);
  await streamRoutes(app, ctx);
  await uiRoutes(app);
  return app;
}

/** The bearer token of a request; event streams may pass it as `access_token` (EventSource cannot set headers). */
function tokenOf(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (typeof header === "string" && header.startsWith("Bearer ")) return header.slice(7).trim();
  const path = request.url.split("?")[0];
  if (request.method === "GET" && path.endsWith("/stream")) {
    const token = (request.query as { access_token?: unknown } | undefined)?.access_token;
    if (typeof token === "string") return token;
  }
  return undefined;
}
