import type { FastifyRequest } from "fastify";
import { dependencyId, type CreateJobInput, type Job } from "../../core/types";
import { graphAround } from "../../db/sql/graph";
import { filteredJobs } from "../../db/sql/server";
import { toJob } from "../../db/sql/rows";
import { tenantOf } from "../access";
import { idsOf, type ServerContext, type TypedApp } from "../context";
import { HttpError } from "../errors";
import { asCreateJobInput, flagBody, GraphInput, IdParams, JobInput, JobsQuery, LogsQuery } from "../schemas";

/** Routes on jobs and graphs. A tenant sees and changes only its own jobs, under its own ids. */
export function jobRoutes(app: TypedApp, ctx: ServerContext): void {
  listAndCreate(app, ctx);
  readOne(app, ctx);
  steer(app, ctx);
}

/**
 * The stored id of a job the caller may see, or a 404 (another tenant's job,
 * like one that does not exist, reveals nothing).
 */
export async function visibleJob(ctx: ServerContext, request: FastifyRequest, id: string): Promise<Job> {
  const ids = idsOf(request);
  const stored = await ids.resolveOne(ctx.db, id);
  const job = await ctx.jobManager.getJob(stored);
  if (!job || (ids.tenant !== null && job.tenant !== ids.tenant)) throw new HttpError(404, `job ${JSON.stringify(id)} not found`);
  return job;
}

/**
 * A tenant's new jobs: its tenant, ids in its namespace, and dependencies on
 * its own jobs only (another tenant's id is as unknown as a missing one).
 */
export async function scopedJobs(ctx: ServerContext, request: FastifyRequest, inputs: CreateJobInput[]): Promise<CreateJobInput[]> {
  const ids = idsOf(request);
  const tenant = ids.tenant;
  if (tenant === null) return inputs;
  for (const [i, input] of inputs.entries()) {
    if (input.tenant !== undefined && input.tenant !== null && input.tenant !== tenant) throw new HttpError(403, "a tenant token can only create jobs for its own tenant", inputs.length > 1 ? `jobs[${i}].tenant` : "tenant");
  }
  const batch = new Set(inputs.map((j) => j.id).filter((id): id is string => typeof id === "string"));
  const external = [...new Set(inputs.flatMap((j) => (j.dependencies ?? []).map(dependencyId)))].filter((id) => !batch.has(id));
  const resolved = await ids.resolve(ctx.db, external);
  const stored = (id: string) => (batch.has(id) ? ids.inward(id) : (resolved.get(id) ?? ids.inward(id)));
  return inputs.map((j) => ({
    ...j,
    tenant,
    id: j.id === undefined ? undefined : ids.inward(j.id),
    dependencies: j.dependencies?.map((d) => (typeof d === "string" ? stored(d) : { ...d, id: stored(d.id) })),
  }));
}

function listAndCreate(app: TypedApp, ctx: ServerContext): void {
  app.get("/api/jobs", { config: { access: "tenant" }, schema: { tags: ["jobs"], summary: "List and filter jobs (live and archived)", querystring: JobsQuery } }, async (request) => {
    const own = tenantOf(request);
    if (own !== null && request.query.tenant !== undefined && request.query.tenant !== own) throw new HttpError(403, "a tenant token can only list its own tenant's jobs", "tenant");
    const ids = idsOf(request);
    const q = request.query;
    const parentId = q.parentId === undefined ? undefined : await ids.resolveOne(ctx.db, q.parentId);
    const createdAfter = q.createdAfter === undefined ? undefined : new Date(q.createdAfter);
    const createdBefore = q.createdBefore === undefined ? undefined : new Date(q.createdBefore);
    return (await filteredJobs(ctx.db, { ...q, tenant: own ?? q.tenant, parentId, createdAfter, createdBefore })).map((row) => ids.job(toJob(row)));
  });
  app.post("/api/jobs", { config: { access: "tenant" }, schema: { tags: ["jobs"], summary: "Create a job", body: JobInput } }, async (request, reply) => {
    const [input] = await scopedJobs(ctx, request, [asCreateJobInput(request.body)]);
    reply.status(201);
    return idsOf(request).job(await ctx.jobManager.createJob(input));
  });
  app.post("/api/graphs", { config: { access: "tenant" }, schema: { tags: ["jobs"], summary: "Create a whole graph of jobs atomically", body: GraphInput } }, async (request, reply) => {
    const jobs = await scopedJobs(ctx, request, request.body.jobs.map(asCreateJobInput));
    reply.status(201);
    const ids = idsOf(request);
    return { jobs: (await ctx.jobManager.createJobs(jobs)).map((j) => ids.job(j)) };
  });
}

function readOne(app: TypedApp, ctx: ServerContext): void {
  const route = { config: { access: "tenant" as const } };
  app.get("/api/jobs/:id", { ...route, schema: { tags: ["jobs"], summary: "A job, live or archived, with its children", params: IdParams } }, async (request) =>
    idsOf(request).job(await visibleJob(ctx, request, request.params.id)),
  );
  app.get("/api/jobs/:id/events", { ...route, schema: { tags: ["jobs"], summary: "Every state change of a job", params: IdParams } }, async (request) =>
    ctx.jobManager.getJobEvents((await visibleJob(ctx, request, request.params.id)).id),
  );
  app.get("/api/jobs/:id/logs", { ...route, schema: { tags: ["jobs"], summary: "A job's log lines", params: IdParams, querystring: LogsQuery } }, async (request) => {
    const job = await visibleJob(ctx, request, request.params.id);
    const lines = await ctx.jobManager.getJobLogs(job.id, request.query);
    return lines.map((line) => ({ ...line, jobId: request.params.id }));
  });
  app.get("/api/jobs/:id/steps", { ...route, schema: { tags: ["jobs"], summary: "A job's durable steps (ctx.step) and sleeps (ctx.sleep)", params: IdParams } }, async (request) =>
    ctx.jobManager.getJobSteps((await visibleJob(ctx, request, request.params.id)).id),
  );
  app.get("/api/jobs/:id/explain", { ...route, schema: { tags: ["jobs"], summary: "Why a job is not running", params: IdParams } }, async (request) => {
    const ids = idsOf(request);
    const explanation = await ctx.jobManager.explain((await visibleJob(ctx, request, request.params.id)).id);
    return explanation && { ...explanation, id: request.params.id, summary: ids.text(explanation.summary), reasons: explanation.reasons.map((r) => ({ ...r, message: ids.text(r.message) })) };
  });
  app.get("/api/jobs/:id/graph", { ...route, schema: { tags: ["jobs"], summary: "A job's dependency graph: its ancestors and descendants", params: IdParams } }, async (request) => {
    const job = await visibleJob(ctx, request, request.params.id);
    return idsOf(request).graph(await graphAround(ctx.db, job.id, tenantOf(request), 300));
  });
}

function steer(app: TypedApp, ctx: ServerContext): void {
  app.post(
    "/api/jobs/:id/cancel",
    { config: { access: "tenant" }, schema: { tags: ["jobs"], summary: "Cancel a job (cascade: everything downstream)", params: IdParams, body: flagBody("cascade") } },
    async (request) => {
      const job = await visibleJob(ctx, request, request.params.id);
      return idsOf(request).job(await ctx.jobManager.cancelJob(job.id, { cascade: (request.body as { cascade?: boolean } | null)?.cascade === true }));
    },
  );
  app.post(
    "/api/jobs/:id/retry",
    { config: { access: "tenant" }, schema: { tags: ["jobs"], summary: "Retry a failed or cancelled job (downstream: its cancelled descendants too)", params: IdParams, body: flagBody("downstream") } },
    async (request) => {
      const job = await visibleJob(ctx, request, request.params.id);
      return idsOf(request).job(await ctx.jobManager.retryJob(job.id, { downstream: (request.body as { downstream?: boolean } | null)?.downstream === true }));
    },
  );
}
