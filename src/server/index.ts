import swagger from "@fastify/swagger";
import Fastify, { type FastifyInstance } from "fastify";
import type { Logger } from "../core/logger";
import { silentLogger } from "../core/logger";
import { databaseFor, type RawQueryClient } from "../db/database";
import { JobManager } from "../jobs/JobManager";
import type { Worker } from "../worker/Worker";
import { enforceAccess } from "./access";
import { skeinClient } from "./auth";
import { typed, type ServerContext } from "./context";
import { errorHandler, redactUrl } from "./errors";
import { Metrics } from "./metrics";
import { adminRoutes } from "./routes/admin";
import { jobRoutes } from "./routes/jobs";
import { overviewRoutes } from "./routes/overview";
import { streamRoutes } from "./routes/stream";
import { workRoutes } from "./routes/work";
import { uiRoutes } from "./ui";
import { strictInput } from "./validation";

export { createTenantToken, listTenantTokens, revokeTenantToken, createStreamTicket, type ApiToken, type Principal } from "./auth";
export type { Access } from "./access";
export { redactUrl } from "./errors";

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
 * instance (not listening yet: call `listen`). Closed by default: every
 * route declares who may call it (public, any token, the admin), decided on
 * the route the router matched; a tenant token sees and changes only its
 * tenant's jobs, under ids of its own. Every request's parameters, query and
 * body are checked before any handler runs.
 */
export async function createServer(options: ServerOptions): Promise<FastifyInstance> {
  const logger = options.logger ?? silentLogger();
  if (options.adminToken !== undefined && options.adminToken.length < 16) throw new Error("the admin token must be at least 16 characters");
  const prisma = skeinClient(options.prisma);
  const db = databaseFor(prisma, options.schema);
  const ctx: ServerContext = { jobManager: new JobManager(prisma, { schema: db.schema.name, logger }), db, prisma, logger };
  // forceCloseConnections: close() also ends open event streams.
  const app = Fastify({ bodyLimit: options.bodyLimit ?? 2 * 1024 * 1024, logger: false, forceCloseConnections: true });
  await app.register(swagger, {
    openapi: {
      openapi: "3.0.3",
      info: { title: "Skein API", version: "0.2.0", description: "Jobs, graphs, streams and operations of a Skein job manager. Bearer token: the admin token or a tenant token; each operation says which." },
      components: { securitySchemes: { bearer: { type: "http", scheme: "bearer" } } },
      security: [{ bearer: [] }],
    },
  });
  app.setErrorHandler(errorHandler(logger));
  enforceAccess(app, prisma, options.adminToken);
  strictInput(app);
  app.addHook("onResponse", async (request, reply) => {
    if (reply.statusCode >= 500) logger.warn("request answered 5xx", { method: request.method, url: redactUrl(request.url), status: reply.statusCode });
  });
  const api = typed(app);
  healthRoutes(api, ctx, options.workers ?? []);
  overviewRoutes(api, ctx);
  jobRoutes(api, ctx);
  workRoutes(api, ctx);
  adminRoutes(api, ctx);
  streamRoutes(api, ctx);
  uiRoutes(app);
  app.get("/openapi.json", { config: { access: "public" }, schema: { hide: true } }, async () => app.swagger());
  return app;
}

/** Health, readiness and metrics. */
function healthRoutes(app: ReturnType<typeof typed>, ctx: ServerContext, workers: Worker[]): void {
  const metrics = new Metrics(ctx.db, ctx.jobManager);
  for (const worker of workers) metrics.observe(worker);
  app.get("/healthz", { config: { access: "public" }, schema: { tags: ["health"], summary: "The process is up" } }, async () => ({ ok: true }));
  app.get("/readyz", { config: { access: "public" }, schema: { tags: ["health"], summary: "The database answers (ready or not, nothing more)" } }, async (_request, reply) => {
    try {
      await ctx.db.query("SELECT 1");
      return { ok: true };
    } catch (error) {
      ctx.logger.warn("readiness check failed", { error: String(error) });
      reply.status(503);
      return { ok: false };
    }
  });
  app.get("/metrics", { config: { access: "admin" }, schema: { tags: ["health"], summary: "Prometheus metrics" } }, async (_request, reply) => {
    reply.header("content-type", metrics.registry.contentType);
    return metrics.registry.metrics();
  });
}
