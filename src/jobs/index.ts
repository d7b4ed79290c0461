export { JobManager, type CreateJobOptions, type HistoryQuery, type JobManagerOptions, type ListQuery } from "./JobManager";
export { JobStatus, JobType, FINAL_STATUSES, type CreateJobInput, type CreateTaskInput, type Job, type JsonObject, type JsonValue, type Task } from "./types";
export {
  SkeinError,
  ValidationError,
  UnknownDependencyError,
  DependencyCycleError,
  DuplicateJobIdError,
  JobNotFoundError,
  InvalidJobStateError,
} from "./errors";
export { LIMITS } from "./validation";
