import type { FastifyInstance, FastifyRequest } from "fastify";
import { overview, workerRows } from "../../db/sql/server";
import type { CreateScheduleInput } from "../../schedules";
import { createTenantToken, listTenantTokens, revokeTenantToken } from "../auth";
import { principalOf, type ServerContext } from "../context";
import { HttpError } from "../errors";
import { nameParams } from "../schemas";

/** Operator routes: overview (any caller, scoped), and for the admin only: workers, schedules, rate limits, tokens. */
export async function opsRoutes(app: FastifyInstance, ctx: ServerContext): Promise<void> {
  const { jobManager, db } = ctx;
  const admin = (request: FastifyRequest) => {
    if (principalOf(request).kind !== "admin") throw new HttpError(403, "this needs the admin token");
  };

  app.get("/api/overview", { schema: { tags: ["overview"], summary: "Counts by status and recent throughput (the caller's tenant, or all)" } }, async (request) => {
    const tenant = ctx.tenantOf(request);
    return { tenant, ...(await overview(db, tenant)) };
  });

  app.get("/api/me", { schema: { tags: ["overview"], summary: "Who the token belongs to" } }, async (request) => {
    const p = principalOf(request);
    return p.kind === "admin" ? { role: "admin" } : { role: "tenant", tenant: p.tenant };
  });

  app.get("/api/workers", { schema: { tags: ["workers"], summary: "Registered workers (admin)" } }, async (request) => {
    admin(request);
    return workerRows(db);
  });

  app.get("/api/schedules", { schema: { tags: ["schedules"], summary: "Schedules (admin)" } }, async (request) => {
    admin(request);
    return jobManager.listSchedules();
  });

  app.post(
    "/api/schedules",
    {
      schema: {
        tags: ["schedules"],
        summary: "Create a schedule (admin)",
        body: {
          type: "object",
          required: ["name", "jobTemplate"],
          additionalProperties: false,
          properties: {
            name: { type: "string", minLength: 1, maxLength: 1000 },
            cron: { type: "string", minLength: 1 },
            intervalSeconds: { type: "integer", minimum: 1 },
            timezone: { type: "string", minLength: 1 },
            catchUp: { type: "string", enum: ["once", "skip"] },
            jobTemplate: { type: "object" },
          },
        },
      },
    },
    async (request, reply) => {
      admin(request);
      reply.status(201);
      return jobManager.createSchedule(request.body as CreateScheduleInput);
    },
  );

  for (const verb of ["pause", "resume"] as const) {
    app.post(`/api/schedules/:name/${verb}`, { schema: { tags: ["schedules"], summary: `${verb} a schedule (admin)`, params: nameParams } }, async (request) => {
      admin(request);
      const { name } = request.params as { name: string };
      return verb === "pause" ? jobManager.pauseSchedule(name) : jobManager.resumeSchedule(name);
    });
  }

  app.delete("/api/schedules/:name", { schema: { tags: ["schedules"], summary: "Delete a schedule (admin)", params: nameParams } }, async (request) => {
    admin(request);
    const { name } = request.params as { name: string };
    if (!(await jobManager.deleteSchedule(name))) throw new HttpError(404, `schedule ${JSON.stringify(name)} not found`);
    return { deleted: name };
  });

  app.get("/api/rate-limits", { schema: { tags: ["rate limits"], summary: "Rate limits with the tokens available now" } }, async () => jobManager.getRateLimits());

  app.put(
    "/api/rate-limits/:name",
    {
      schema: {
        tags: ["rate limits"],
        summary: "Set a key's rate limit (admin)",
        params: nameParams,
        body: { type: "object", additionalProperties: false, properties: { perSecond: { type: "number", exclusiveMinimum: 0 }, perMinute: { type: "number", exclusiveMinimum: 0 }, burst: { type: "number", minimum: 1 } } },
      },
    },
    async (request) => {
      admin(request);
      return jobManager.setRateLimit((request.params as { name: string }).name, request.body as { perSecond?: number; perMinute?: number; burst?: number });
    },
  );

  app.delete("/api/rate-limits/:name", { schema: { tags: ["rate limits"], summary: "Remove a key's rate limit (admin)", params: nameParams } }, async (request) => {
    admin(request);
    const { name } = request.params as { name: string };
    if (!(await jobManager.removeRateLimit(name))) throw new HttpError(404, `no rate limit for ${JSON.stringify(name)}`);
    return { removed: name };
  });

  app.get("/api/tokens", { schema: { tags: ["tokens"], summary: "Tenant tokens, without secrets (admin)" } }, async (request) => {
    admin(request);
    return listTenantTokens(ctx.prisma);
  });

  app.post(
    "/api/tokens",
    { schema: { tags: ["tokens"], summary: "Create a tenant token; its secret is returned once (admin)", body: { type: "object", required: ["tenant"], additionalProperties: false, properties: { tenant: { type: "string", minLength: 1, maxLength: 255 }, name: { type: "string", minLength: 1, maxLength: 200 } } } } },
    async (request, reply) => {
      admin(request);
      const body = request.body as { tenant: string; name?: string };
      reply.status(201);
      return createTenantToken(ctx.prisma, body.tenant, body.name);
    },
  );

  app.delete("/api/tokens/:id", { schema: { tags: ["tokens"], summary: "Revoke a tenant token (admin)", params: { type: "object", required: ["id"], properties: { id: { type: "string", pattern: "^[a-f0-9]{16}$" } } } } }, async (request) => {
    admin(request);
    const { id } = request.params as { id: string };
    if (!(await revokeTenantToken(ctx.prisma, id))) throw new HttpError(404, `no active token ${id}`);
    return { revoked: id };
  });
}
