export { Worker, type WorkerEvents } from "./Worker";
export type { WorkerOptions } from "./options";
export { AgentExecutor, QueryExecutor, NOOP_AGENT } from "./executors";
export { NonRetryableError, RateLimitedError, DelegatedJobError, JobSuspended, type DelegateOptions, type DelegateSpec, type TaskHandle, type JobLog, type AgentFunction, type AgentRegistry, type Executor, type JobContext, type QueryEngine, type QueryRequest } from "./types";
export { runHistoryPruning } from "./maintenance";
export { systemClock, type Clock } from "../core/clock";
