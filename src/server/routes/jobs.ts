import type { FastifyInstance, FastifyRequest } from "fastify";
import { foreignJobIds, filteredJobs, tenantOf, tenantDeadLetters } from "../../db/sql/server";
import { toJob } from "../../db/sql/rows";
import { dependencyId, type CreateJobInput, type Job } from "../../core/types";
import { HttpError } from "../errors";
import { idParams, jobInput, jobsQuery } from "../schemas";
import type { ServerContext } from "../context";

/** Routes on jobs, graphs, history, the dead-letter queue and tasks. Tenants see only their own. */
export async function jobRoutes(app: FastifyInstance, ctx: ServerContext): Promise<void> {
  const { jobManager, db } = ctx;

  /** The job, if the caller may see it (404 otherwise: another tenant's id reveals nothing). */
  async function visibleJob(request: FastifyRequest, id: string): Promise<Job> {
    const tenant = ctx.tenantOf(request);
    if (tenant !== null && (await tenantOf(db, id)) !== tenant) throw new HttpError(404, `job ${JSON.stringify(id)} not found`);
    const job = await jobManager.getJob(id);
    if (!job) throw new HttpError(404, `job ${JSON.stringify(id)} not found`);
    return job;
  }

  /** A tenant's new jobs belong to it, and may depend only on its own jobs. */
  async function scoped(request: FastifyRequest, inputs: CreateJobInput[]): Promise<CreateJobInput[]> {
    const tenant = ctx.tenantOf(request);
    if (tenant === null) return inputs;
    for (const [i, input] of inputs.entries()) {
      if (input.tenant !== undefined && input.tenant !== null && input.tenant !== tenant) throw new HttpError(403, "a tenant token can only create jobs for its own tenant", inputs.length > 1 ? `jobs[${i}].tenant` : "tenant");
    }
    const batch = new Set(inputs.map((j) => j.id).filter((id): id is string => typeof id === "string"));
    const external = [...new Set(inputs.flatMap((j) => (j.dependencies ?? []).map(dependencyId)))].filter((id) => !batch.has(id));
    const foreign = await foreignJobIds(db, external, tenant);
    if (foreign.length > 0) throw new HttpError(400, `unknown dependency id${foreign.length > 1 ? "s" : ""}: ${foreign.map((f) => JSON.stringify(f)).join(", ")}`, "dependencies");
    return inputs.map((j) => ({ ...j, tenant }));
  }

  app.get("/api/jobs", { schema: { tags: ["jobs"], summary: "List and filter jobs (live and archived)", querystring: jobsQuery } }, async (request) => {
    const q = request.query as { status?: string; tenant?: string; queue?: string; limit: number };
    const own = ctx.tenantOf(request);
    if (own !== null && q.tenant !== undefined && q.tenant !== own) throw new HttpError(403, "a tenant token can only list its own tenant's jobs", "tenant");
    return (await filteredJobs(db, { ...q, tenant: own ?? q.tenant })).map(toJob);
  });

  app.post("/api/jobs", { schema: { tags: ["jobs"], summary: "Create a job", body: jobInput } }, async (request, reply) => {
    const [input] = await scoped(request, [request.body as CreateJobInput]);
    reply.status(201);
    return jobManager.createJob(input);
  });

  app.post(
    "/api/graphs",
    { schema: { tags: ["jobs"], summary: "Create a whole graph of jobs atomically", body: { type: "object", required: ["jobs"], additionalProperties: false, properties: { jobs: { type: "array", minItems: 1, maxItems: 10000, items: jobInput } } } } },
    async (request, reply) => {
      const jobs = await scoped(request, (request.body as { jobs: CreateJobInput[] }).jobs);
      reply.status(201);
      return { jobs: await jobManager.createJobs(jobs) };
    },
  );

  app.get("/api/jobs/:id", { schema: { tags: ["jobs"], summary: "A job, live or archived, with its children", params: idParams } }, async (request) => visibleJob(request, (request.params as { id: string }).id));

  app.get("/api/jobs/:id/events", { schema: { tags: ["jobs"], summary: "Every state change of a job", params: idParams } }, async (request) => {
    const { id } = request.params as { id: string };
    await visibleJob(request, id);
    return jobManager.getJobEvents(id);
  });

  app.get(
    "/api/jobs/:id/logs",
    { schema: { tags: ["jobs"], summary: "A job's log lines", params: idParams, querystring: { type: "object", additionalProperties: false, properties: { after: { type: "string", pattern: "^[0-9]{1,18}$" }, limit: { type: "integer", minimum: 1, maximum: 10000, default: 1000 } } } } },
    async (request) => {
      const { id } = request.params as { id: string };
      await visibleJob(request, id);
      const q = request.query as { after?: string; limit: number };
      return jobManager.getJobLogs(id, q);
    },
  );

  app.get("/api/jobs/:id/explain", { schema: { tags: ["jobs"], summary: "Why a job is not running", params: idParams } }, async (request) => {
    const { id } = request.params as { id: string };
    await visibleJob(request, id);
    return jobManager.explain(id);
  });

  app.get("/api/jobs/:id/graph", { schema: { tags: ["jobs"], summary: "A job's dependency graph: its ancestors and descendants", params: idParams } }, async (request) => {
    const { id } = request.params as { id: string };
    await visibleJob(request, id);
    return ctx.graphAround(id, ctx.tenantOf(request));
  });

  const flag = (name: string) => ({ type: "object", additionalProperties: false, properties: { [name]: { type: "boolean" } } }) as const;

  app.post("/api/jobs/:id/cancel", { schema: { tags: ["jobs"], summary: "Cancel a job (cascade: everything downstream)", params: idParams, body: { ...flag("cascade"), nullable: true } } }, async (request) => {
    const { id } = request.params as { id: string };
    await visibleJob(request, id);
    return jobManager.cancelJob(id, { cascade: (request.body as { cascade?: boolean } | null)?.cascade === true });
  });

  app.post("/api/jobs/:id/retry", { schema: { tags: ["jobs"], summary: "Retry a failed or cancelled job (downstream: its cancelled descendants too)", params: idParams, body: { ...flag("downstream"), nullable: true } } }, async (request) => {
    const { id } = request.params as { id: string };
    await visibleJob(request, id);
    return jobManager.retryJob(id, { downstream: (request.body as { downstream?: boolean } | null)?.downstream === true });
  });

  app.get(
    "/api/dlq",
    { schema: { tags: ["dead letters"], summary: "Finally failed jobs", querystring: { type: "object", additionalProperties: false, properties: { since: { type: "string", format: "date-time" }, limit: { type: "integer", minimum: 1, maximum: 1000, default: 100 } } } } },
    async (request) => {
      const q = request.query as { since?: string; limit: number };
      return (await tenantDeadLetters(db, ctx.tenantOf(request), q.since ? new Date(q.since) : null, q.limit)).map(toJob);
    },
  );

  app.post(
    "/api/dlq/replay",
    {
      schema: {
        tags: ["dead letters"],
        summary: "Replay finally failed jobs with their dependents: ids, since, or all",
        body: { type: "object", additionalProperties: false, properties: { ids: { type: "array", minItems: 1, maxItems: 10000, items: { type: "string", minLength: 1 } }, since: { type: "string", format: "date-time" }, all: { type: "boolean" } } },
      },
    },
    async (request) => {
      const body = request.body as { ids?: string[]; since?: string; all?: boolean };
      const tenant = ctx.tenantOf(request);
      if (tenant === null) return jobManager.replayDeadLetters(body);
      // A tenant replays only its own failed jobs: resolve the selection to ids first.
      let ids = body.ids;
      if (ids === undefined) {
        const chosen = [body.since !== undefined, body.all === true].filter(Boolean).length;
        if (chosen !== 1) throw new HttpError(400, "give exactly one of ids, since or all", "replay");
        ids = (await tenantDeadLetters(db, tenant, body.since ? new Date(body.since) : null, 10000)).map((j) => j.id);
        if (ids.length === 0) return { replayed: [], restored: 0, skipped: [] };
      } else if (body.since !== undefined || body.all !== undefined) {
        throw new HttpError(400, "give exactly one of ids, since or all", "replay");
      }
      const foreign = new Set(await foreignJobIds(db, ids, tenant));
      const outcome = await jobManager.replayDeadLetters({ ids: ids.filter((id) => !foreign.has(id)) });
      for (const id of foreign) outcome.skipped.push({ id, reason: `job ${JSON.stringify(id)} is not a failed job in history` });
      return outcome;
    },
  );

  app.post(
    "/api/tasks",
    { schema: { tags: ["tasks"], summary: "Create a task: a group of jobs with progress", body: { type: "object", required: ["name", "jobs"], additionalProperties: false, properties: { id: { type: "string", minLength: 1 }, tenant: { type: "string", minLength: 1 }, name: { type: "string", minLength: 1 }, jobs: { type: "array", minItems: 1, maxItems: 10000, items: jobInput } } } } },
    async (request, reply) => {
      const body = request.body as { id?: string; tenant?: string; name: string; jobs: CreateJobInput[] };
      const tenant = ctx.tenantOf(request);
      if (tenant !== null && body.tenant !== undefined && body.tenant !== tenant) throw new HttpError(403, "a tenant token can only create tasks for its own tenant", "tenant");
      const jobs = await scoped(request, body.jobs);
      reply.status(201);
      return jobManager.createTask({ ...body, tenant: tenant ?? body.tenant, jobs });
    },
  );

  app.get("/api/tasks/:id", { schema: { tags: ["tasks"], summary: "A task's progress", params: idParams } }, async (request) => {
    const task = await jobManager.getTask((request.params as { id: string }).id);
    const tenant = ctx.tenantOf(request);
    if (!task || (tenant !== null && task.tenant !== tenant)) throw new HttpError(404, "task not found");
    return task;
  });
}
