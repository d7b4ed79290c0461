import type { Job } from "../core/types";
import { JobType } from "../core/types";
import { NonRetryableError, type AgentRegistry, type Executor, type JobContext, type QueryEngine } from "./types";

/** Name of the built-in agent that does nothing (load tests). */
export const NOOP_AGENT = "noop";

/** Runs `agent` jobs: the registry's `payload.agent_name` with `payload.parameters`. */
export class AgentExecutor implements Executor {
  readonly name = "agent";
  constructor(private readonly registry: AgentRegistry) {}

  canExecute(job: Job): boolean {
    return job.jobType === JobType.AGENT;
  }

  async execute(job: Job, ctx: JobContext) {
    const agentName = job.payload.agent_name;
    if (typeof agentName !== "string" || agentName === "") {
      throw new NonRetryableError(`agent job ${JSON.stringify(job.id)} has no payload.agent_name`);
    }
    const agent = Object.prototype.hasOwnProperty.call(this.registry, agentName) ? this.registry[agentName] : undefined;
    // The built-in `noop` agent (unless you register your own) does nothing: for load tests (`skein create-task`).
    if (agent === undefined && agentName === NOOP_AGENT) return null;
    if (typeof agent !== "function") throw new NonRetryableError(`agent ${JSON.stringify(agentName)} is not registered`);
    return agent(job.payload.parameters, ctx);
  }
}

/** Runs `query` jobs: passes `payload.query` and `payload.inferred_goal_output` to the query engine. */
export class QueryExecutor implements Executor {
  readonly name = "query";
  constructor(private readonly engine: QueryEngine | undefined) {}

  canExecute(job: Job): boolean {
    return job.jobType === JobType.QUERY;
  }

  async execute(job: Job, ctx: JobContext) {
    if (!this.engine) throw new NonRetryableError("no query engine configured");
    return this.engine({ query: job.payload.query, inferredGoalOutput: job.payload.inferred_goal_output }, ctx);
  }
}

/** The first executor that accepts the job; throws a NonRetryableError when none does. */
export function pickExecutor(executors: readonly Executor[], job: Job): Executor {
  const executor = executors.find((e) => e.canExecute(job));
  if (!executor) throw new NonRetryableError(`no executor for job type ${JSON.stringify(job.jobType)} (job ${JSON.stringify(job.id)})`);
  return executor;
}
