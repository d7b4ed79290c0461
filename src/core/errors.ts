/** Base class of the errors Skein raises on purpose. */
export class SkeinError extends Error {
  override name = "SkeinError";
}

/** An input value is not acceptable; `field` names it. Nothing was written. */
export class ValidationError extends SkeinError {
  override name = "ValidationError";
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
  }
}

/** `"a", "b"` for error messages. */
function quoted(ids: readonly string[], separator = ", "): string {
  return ids.map((id) => JSON.stringify(id)).join(separator);
}

/** An error about some job ids, listed in its message after `what` (plural when there are several). */
abstract class JobIdsError extends SkeinError {
  constructor(
    readonly ids: string[],
    what: string,
  ) {
    super(`${what}${ids.length > 1 ? "s" : ""}: ${quoted(ids)}`);
  }
}

/** Dependencies name jobs that do not exist (live or in history). Nothing was written. */
export class UnknownDependencyError extends JobIdsError {
  override name = "UnknownDependencyError";
  constructor(ids: string[]) {
    super(ids, "unknown dependency id");
  }
}

/** The dependencies form a cycle (a job depending on itself is the shortest). Nothing was written. */
export class DependencyCycleError extends SkeinError {
  override name = "DependencyCycleError";
  constructor(readonly ids: string[]) {
    super(`dependency cycle: ${quoted(ids, " -> ")}`);
  }
}

/** A job with one of these ids exists already (or the ids repeat within one call). Nothing was written. */
export class DuplicateJobIdError extends JobIdsError {
  override name = "DuplicateJobIdError";
  constructor(ids: string[]) {
    super(ids, "duplicate job id");
  }
}

/** No job has this id. */
export class JobNotFoundError extends SkeinError {
  override name = "JobNotFoundError";
  constructor(readonly id: string) {
    super(`job ${JSON.stringify(id)} not found`);
  }
}

/** The job is not in a state that allows the operation. */
export class InvalidJobStateError extends SkeinError {
  override name = "InvalidJobStateError";
  constructor(
    readonly id: string,
    message: string,
  ) {
    super(message);
  }
}

/** No schedule has this name. */
export class ScheduleNotFoundError extends SkeinError {
  override readonly name = "ScheduleNotFoundError";
  constructor(readonly scheduleName: string) {
    super(`schedule ${JSON.stringify(scheduleName)} not found`);
  }
}

/** No running worker has this id (it stopped, or never ran). */
export class WorkerNotFoundError extends SkeinError {
  override readonly name = "WorkerNotFoundError";
  constructor(readonly workerId: string) {
    super(`no running worker has id ${JSON.stringify(workerId)}`);
  }
}
