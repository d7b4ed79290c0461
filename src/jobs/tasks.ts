import { randomUUID } from "node:crypto";
import { checkText, LIMITS } from "../core/checks";
import { ValidationError } from "../core/errors";
import type { CreateTaskInput, JsonValue, Task } from "../core/types";
import { insertTask, readTask } from "../db/sql/tasks";
import { retryDeadlocks, type JobsContext } from "./context";
import { orderBatch } from "./dependencies";
import { normalizeJobInput } from "./validation";
import type { JobWriter } from "./writer";

/** Tasks: a tenant's group of jobs, created atomically, with progress. */
export class TaskService {
  constructor(
    private readonly ctx: JobsContext,
    private readonly writer: JobWriter,
  ) {}

  /** See `JobManager.createTask`. */
  async createTask(input: CreateTaskInput): Promise<Task> {
    if (typeof input !== "object" || input === null) throw new ValidationError("task", "must be an object");
    const id = input.id === undefined ? randomUUID() : checkText(input.id, "id", LIMITS.idLength, false);
    const tenant = input.tenant === undefined || input.tenant === null ? null : checkText(input.tenant, "tenant", LIMITS.keyLength, false);
    const name = checkText(input.name, "name", LIMITS.nameLength, false);
    if (!Array.isArray(input.jobs) || input.jobs.length === 0) throw new ValidationError("jobs", "must be a non-empty array of jobs");
    const ordered = orderBatch(input.jobs.map((job, i) => normalizeJobInput(job, `jobs[${i}].`)));
    const { rows, ready } = await retryDeadlocks(false, () =>
      this.ctx.db.transaction(async (sql) => {
        if (await readTask(sql, id)) throw new ValidationError("id", `a task with id ${JSON.stringify(id)} already exists`);
        await insertTask(sql, { id, tenant, name, totalJobs: ordered.length });
        return this.writer.write(sql, ordered, { taskId: id, parentId: null, tenant });
      }),
    );
    if (ready) this.ctx.notifier.poke();
    this.ctx.wrote(rows.length);
    return (await this.getTask(id)) as Task;
  }

  /** A task with its jobs counted by status and the percentage finished; `null` if unknown. */
  async getTask(id: string): Promise<Task | null> {
    const row = await readTask(this.ctx.db, checkText(id, "id", LIMITS.idLength, false));
    if (!row) return null;
    const counts = { pending: row.pending, running: row.running, completed: row.completed, failed: row.failed, cancelled: row.cancelled };
    const finished = row.completed + row.failed + row.cancelled;
    return {
      id: row.id,
      tenant: row.tenant,
      name: row.name,
      totalJobs: row.total_jobs,
      counts,
      percentDone: row.total_jobs === 0 ? 100 : Math.round((finished / row.total_jobs) * 1000) / 10,
      done: finished >= row.total_jobs,
      currentStep: (row.current_step ?? null) as JsonValue | null,
      createdAt: row.created_at,
      updatedAt: row.updated_at,
    };
  }
}
