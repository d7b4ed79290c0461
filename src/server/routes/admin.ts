import type { CreateScheduleInput } from "../../schedules";
import { workerRows } from "../../db/sql/server";
import { createTenantToken, listTenantTokens, revokeTenantToken } from "../auth";
import type { ServerContext, TypedApp } from "../context";
import { HttpError } from "../errors";
import { ConcurrencyInput, NameParams, RateLimitInput, ScheduleInput, TokenInput, TokenParams, WorkerParams } from "../schemas";

const admin = { config: { access: "admin" as const } };

/** The admin's routes: workers and queues, schedules, rate limits and tenant tokens. */
export function adminRoutes(app: TypedApp, ctx: ServerContext): void {
  app.get("/api/workers", { ...admin, schema: { tags: ["workers"], summary: "Registered workers, with their state (running, quiet, draining, stopping)" } }, async () => workerRows(ctx.db));
  controlRoutes(app, ctx);
  scheduleRoutes(app, ctx);
  rateLimitRoutes(app, ctx);
  tokenRoutes(app, ctx);
}

/** Operator controls: pause and resume queues; quiet, drain or resume a worker, or change its jobs at once. */
function controlRoutes(app: TypedApp, ctx: ServerContext): void {
  const { jobManager } = ctx;
  app.get("/api/queues", { ...admin, schema: { tags: ["queues"], summary: "Queues: ready, running, waiting, paused, the oldest ready job's age" } }, async () => jobManager.listQueues());
  app.post("/api/queues/:name/pause", { ...admin, schema: { tags: ["queues"], summary: "Pause a queue: no worker claims its jobs until it is resumed", params: NameParams } }, async (request) =>
    jobManager.pauseQueue(request.params.name),
  );
  app.post("/api/queues/:name/resume", { ...admin, schema: { tags: ["queues"], summary: "Resume a paused queue", params: NameParams } }, async (request) => jobManager.resumeQueue(request.params.name));
  const requests = { quiet: "Stop claiming; finish what runs", drain: "Stop claiming, then stop once idle", resume: "Claim again" } as const;
  for (const verb of ["quiet", "drain", "resume"] as const) {
    app.post(`/api/workers/:id/${verb}`, { ...admin, schema: { tags: ["workers"], summary: requests[verb], params: WorkerParams } }, async (request) => {
      const id = request.params.id;
      return verb === "quiet" ? jobManager.quietWorker(id) : verb === "drain" ? jobManager.drainWorker(id) : jobManager.resumeWorker(id);
    });
  }
  app.put("/api/workers/:id/concurrency", { ...admin, schema: { tags: ["workers"], summary: "Change how many jobs a running worker runs at once", params: WorkerParams, body: ConcurrencyInput } }, async (request) =>
    jobManager.setWorkerConcurrency(request.params.id, request.body.maxConcurrentJobs),
  );
}

function scheduleRoutes(app: TypedApp, ctx: ServerContext): void {
  const { jobManager } = ctx;
  app.get("/api/schedules", { ...admin, schema: { tags: ["schedules"], summary: "Schedules" } }, async () => jobManager.listSchedules());
  app.post("/api/schedules", { ...admin, schema: { tags: ["schedules"], summary: "Create a schedule", body: ScheduleInput } }, async (request, reply) => {
    const created = await jobManager.createSchedule(request.body as unknown as CreateScheduleInput);
    reply.status(201);
    return created;
  });
  for (const verb of ["pause", "resume"] as const) {
    app.post(`/api/schedules/:name/${verb}`, { ...admin, schema: { tags: ["schedules"], summary: `${verb === "pause" ? "Pause" : "Resume"} a schedule`, params: NameParams } }, async (request) =>
      verb === "pause" ? jobManager.pauseSchedule(request.params.name) : jobManager.resumeSchedule(request.params.name),
    );
  }
  app.delete("/api/schedules/:name", { ...admin, schema: { tags: ["schedules"], summary: "Delete a schedule", params: NameParams } }, async (request) => {
    if (!(await jobManager.deleteSchedule(request.params.name))) throw new HttpError(404, `schedule ${JSON.stringify(request.params.name)} not found`);
    return { deleted: request.params.name };
  });
}

function rateLimitRoutes(app: TypedApp, ctx: ServerContext): void {
  const { jobManager } = ctx;
  app.get("/api/rate-limits", { ...admin, schema: { tags: ["rate limits"], summary: "Rate limits with the tokens available now" } }, async () => jobManager.getRateLimits());
  app.put("/api/rate-limits/:name", { ...admin, schema: { tags: ["rate limits"], summary: "Set a key's rate limit", params: NameParams, body: RateLimitInput } }, async (request) =>
    jobManager.setRateLimit(request.params.name, request.body),
  );
  app.delete("/api/rate-limits/:name", { ...admin, schema: { tags: ["rate limits"], summary: "Remove a key's rate limit", params: NameParams } }, async (request) => {
    if (!(await jobManager.removeRateLimit(request.params.name))) throw new HttpError(404, `no rate limit for ${JSON.stringify(request.params.name)}`);
    return { removed: request.params.name };
  });
}

function tokenRoutes(app: TypedApp, ctx: ServerContext): void {
  app.get("/api/tokens", { ...admin, schema: { tags: ["tokens"], summary: "Tenant tokens, without secrets" } }, async () => listTenantTokens(ctx.prisma));
  app.post("/api/tokens", { ...admin, schema: { tags: ["tokens"], summary: "Create a tenant token; its secret is returned once", body: TokenInput } }, async (request, reply) => {
    const created = await createTenantToken(ctx.prisma, request.body.tenant, request.body.name);
    reply.status(201);
    return created;
  });
  app.delete("/api/tokens/:id", { ...admin, schema: { tags: ["tokens"], summary: "Revoke a tenant token", params: TokenParams } }, async (request) => {
    if (!(await revokeTenantToken(ctx.prisma, request.params.id))) throw new HttpError(404, `no active token ${request.params.id}`);
    return { revoked: request.params.id };
  });
}
