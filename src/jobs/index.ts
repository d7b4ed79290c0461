export { JobManager, type JobLogLine, type CancelOptions, type CreateJobOptions, type HistoryQuery, type JobManagerOptions, type JobStep, type ListQuery, type ProvenanceQuery, type QueueInfo, type ReplayOutcome, type WorkerInfo } from "./JobManager";
export { JobStatus, JobType, FINAL_STATUSES, type CreateJobInput, type CreateTaskInput, type DependencySpec, type FailurePolicy, dependencyId, type Job, type JsonObject, type JsonValue, type Task } from "../core/types";
export {
  SkeinError,
  ValidationError,
  UnknownDependencyError,
  DependencyCycleError,
  DuplicateJobIdError,
  JobNotFoundError,
  InvalidJobStateError,
  ScheduleNotFoundError,
  WorkerNotFoundError,
} from "../core/errors";
export { LIMITS } from "../core/checks";
export type { JobEvent, JobEventType } from "./events";
