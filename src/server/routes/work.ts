import { checkText, LIMITS } from "../../core/checks";
import type { CreateJobInput } from "../../core/types";
import { foreignJobIds, tenantDeadLetters } from "../../db/sql/server";
import { toJob } from "../../db/sql/rows";
import { tenantOf } from "../access";
import { idsOf, type ServerContext, type TypedApp } from "../context";
import { HttpError } from "../errors";
import { asCreateJobInput, DeadLettersQuery, IdParams, ReplayInput, TaskInput } from "../schemas";
import { scopedJobs } from "./jobs";

/** Dead letters and tasks, each tenant's own. */
export function workRoutes(app: TypedApp, ctx: ServerContext): void {
  deadLetterRoutes(app, ctx);
  taskRoutes(app, ctx);
}

function deadLetterRoutes(app: TypedApp, ctx: ServerContext): void {
  app.get("/api/dlq", { config: { access: "tenant" }, schema: { tags: ["dead letters"], summary: "Finally failed jobs", querystring: DeadLettersQuery } }, async (request) => {
    const ids = idsOf(request);
    const since = request.query.since ? new Date(request.query.since) : null;
    return (await tenantDeadLetters(ctx.db, ids.tenant, since, request.query.limit)).map((row) => ids.job(toJob(row)));
  });
  app.post(
    "/api/dlq/replay",
    { config: { access: "tenant" }, schema: { tags: ["dead letters"], summary: "Replay finally failed jobs with their dependents: ids, since, or all", body: ReplayInput } },
    async (request) => {
      const body = request.body;
      const ids = idsOf(request);
      if ([body.ids !== undefined, body.since !== undefined, body.all === true].filter(Boolean).length !== 1) throw new HttpError(400, "give exactly one of ids, since or all", "replay");
      if (ids.tenant === null) return ctx.jobManager.replayDeadLetters(body);
      // A tenant replays only its own failed jobs: the selection becomes stored ids first.
      const chosen = body.ids ?? (await tenantDeadLetters(ctx.db, ids.tenant, body.since ? new Date(body.since) : null, 10_000)).map((j) => ids.outward(j.id));
      if (chosen.length === 0) return { replayed: [], restored: 0, skipped: [] };
      const stored = await ids.resolve(ctx.db, chosen);
      const foreign = new Set(await foreignJobIds(ctx.db, [...stored.values()], ids.tenant));
      const outcome = await ctx.jobManager.replayDeadLetters({ ids: chosen.map((id) => stored.get(id) as string).filter((id) => !foreign.has(id)) });
      return {
        replayed: outcome.replayed.map((id) => ids.outward(id)),
        restored: outcome.restored,
        skipped: [...outcome.skipped.map((s) => ({ id: ids.outward(s.id), reason: ids.text(s.reason) })), ...[...foreign].map((id) => ({ id: ids.outward(id), reason: `job ${JSON.stringify(ids.outward(id))} is not a failed job in history` }))],
      };
    },
  );
}

function taskRoutes(app: TypedApp, ctx: ServerContext): void {
  app.post("/api/tasks", { config: { access: "tenant" }, schema: { tags: ["tasks"], summary: "Create a task: a group of jobs with progress", body: TaskInput } }, async (request, reply) => {
    const body = request.body;
    const ids = idsOf(request);
    if (ids.tenant !== null && body.tenant !== undefined && body.tenant !== ids.tenant) throw new HttpError(403, "a tenant token can only create tasks for its own tenant", "tenant");
    const jobs: CreateJobInput[] = await scopedJobs(ctx, request, body.jobs.map(asCreateJobInput));
    reply.status(201);
    const task = await ctx.jobManager.createTask({ ...body, id: body.id === undefined ? undefined : ids.inward(body.id), tenant: ids.tenant ?? body.tenant, jobs });
    return { ...task, id: ids.outward(task.id) };
  });
  app.get("/api/tasks/:id", { config: { access: "tenant" }, schema: { tags: ["tasks"], summary: "A task's progress", params: IdParams } }, async (request) => {
    const ids = idsOf(request);
    const tenant = tenantOf(request);
    const id = checkText(request.params.id, "id", LIMITS.idLength, false);
    const task = (await ctx.jobManager.getTask(ids.inward(id))) ?? (tenant === null ? null : await ctx.jobManager.getTask(id));
    if (!task || (tenant !== null && task.tenant !== tenant)) throw new HttpError(404, "task not found");
    return { ...task, id };
  });
}
