import { checkInteger, checkTags, checkText, describe, INT4_MAX, LIMITS } from "../core/checks";
import { ValidationError } from "../core/errors";
import { newJobId } from "../core/ids";
import { isPlainObject, storableJson } from "../core/json";
import { JobType, type CreateJobInput, type DependencySpec, type FailurePolicy, type Job, type JsonObject } from "../core/types";

const JOB_TYPES: readonly string[] = Object.values(JobType);

/** A validated job, ready to be planned and written: a {@link Job}'s fields as given, with defaults. */
export interface NormalizedJob extends Pick<Job, "name" | "description" | "maxRetries" | "priority" | "timeoutSeconds" | "queue" | "tenant" | "rateLimitKey" | "rateLimitCost" | "concurrencyKey" | "tags"> {
  id: string;
  /**
   * The caller supplied the id. A generated one is a new version 7 UUID (the
   * time, a per-millisecond sequence and 62 random bits; see `newJobId`),
   * which no job, live or archived, can hold already: only supplied ids are
   * looked up before inserting (the live table's primary key still refuses a
   * clash).
   */
  idGiven: boolean;
  jobType: JobType;
  payload: JsonObject;
  /** As given (for the `dependencies` column). */
  dependencies: DependencySpec[];
  /** Distinct dependency ids (for the edges). */
  dependencyIds: string[];
  /** Each distinct dependency's failure policy. */
  policies: Map<string, FailurePolicy>;
  runAt: Date | null;
}

/** Validates one input; `where` prefixes field names in errors (e.g. `jobs[3].`). */
export function normalizeJobInput(input: CreateJobInput, where = ""): NormalizedJob {
  if (typeof input !== "object" || input === null || Array.isArray(input)) {
    throw new ValidationError(where || "input", "must be an object");
  }
  const field = (name: string) => `${where}${name}`;
  const idGiven = input.id !== undefined && input.id !== null;
  const id = idGiven ? checkText(input.id, field("id"), LIMITS.idLength, false) : newJobId();
  if (!JOB_TYPES.includes(input.jobType as string)) {
    throw new ValidationError(field("jobType"), `must be one of ${JOB_TYPES.map((t) => `"${t}"`).join(", ")} (got ${describe(input.jobType)})`);
  }
  const name = checkText(input.name, field("name"), LIMITS.nameLength, false);
  const description =
    input.description === undefined || input.description === null
      ? null
      : checkText(input.description, field("description"), LIMITS.descriptionLength, true);
  const payload = input.payload === undefined ? {} : checkPayload(input.payload, field("payload"));
  const { dependencies, policies } = checkDependencies(input.dependencies, field("dependencies"));
  return {
    id,
    idGiven,
    jobType: input.jobType,
    name,
    description,
    payload,
    dependencies,
    dependencyIds: [...policies.keys()],
    policies,
    maxRetries: checkInteger(input.maxRetries, field("maxRetries"), 3, 0, LIMITS.maxRetries),
    priority: checkInteger(input.priority, field("priority"), 0, -INT4_MAX, INT4_MAX),
    runAt: checkDate(input.runAt, field("runAt")),
    timeoutSeconds:
      input.timeoutSeconds === undefined || input.timeoutSeconds === null
        ? null
        : checkInteger(input.timeoutSeconds, field("timeoutSeconds"), 0, 1, LIMITS.timeoutSeconds),
    queue: input.queue === undefined || input.queue === null ? "default" : checkText(input.queue, field("queue"), LIMITS.keyLength, false),
    tenant: optionalKey(input.tenant, field("tenant")),
    rateLimitKey: optionalKey(input.rateLimitKey, field("rateLimitKey")),
    rateLimitCost: checkInteger(input.rateLimitCost, field("rateLimitCost"), 1, 1, INT4_MAX),
    concurrencyKey: optionalKey(input.concurrencyKey, field("concurrencyKey")),
    tags: checkTags(input.tags, field("tags")),
  };
}

function optionalKey(value: unknown, field: string): string | null {
  return value === undefined || value === null ? null : checkText(value, field, LIMITS.keyLength, false);
}

function checkDate(value: unknown, field: string): Date | null {
  if (value === undefined || value === null) return null;
  const date = value instanceof Date ? value : typeof value === "string" ? new Date(value) : undefined;
  if (!date || Number.isNaN(date.getTime())) throw new ValidationError(field, "must be a valid Date or ISO 8601 string");
  const year = date.getUTCFullYear();
  if (year < 1 || year > 9999) throw new ValidationError(field, `year must be between 1 and 9999 (got ${year})`);
  return date;
}

const POLICIES: readonly FailurePolicy[] = ["cancel", "ignore", "fail"];

function checkDependencies(value: unknown, field: string): { dependencies: DependencySpec[]; policies: Map<string, FailurePolicy> } {
  const policies = new Map<string, FailurePolicy>();
  if (value === undefined || value === null) return { dependencies: [], policies };
  if (!Array.isArray(value)) throw new ValidationError(field, "must be an array of job ids or { id, onFailure } objects");
  if (value.length > LIMITS.dependencies) throw new ValidationError(field, `must list at most ${LIMITS.dependencies} jobs (got ${value.length})`);
  const dependencies = value.map((item: unknown, i): DependencySpec => {
    const where = `${field}[${i}]`;
    let spec: DependencySpec;
    let policy: FailurePolicy = "cancel";
    if (typeof item === "object" && item !== null && !Array.isArray(item)) {
      const { id, onFailure, ...rest } = item as { id?: unknown; onFailure?: unknown };
      const extra = Object.keys(rest);
      if (extra.length > 0) throw new ValidationError(`${where}.${extra[0]}`, "is not a dependency option (use id and onFailure)");
      if (onFailure !== undefined && !POLICIES.includes(onFailure as FailurePolicy)) {
        throw new ValidationError(`${where}.onFailure`, `must be one of ${POLICIES.map((p) => `"${p}"`).join(", ")} (got ${describe(onFailure)})`);
      }
      policy = (onFailure as FailurePolicy | undefined) ?? "cancel";
      spec = { id: checkText(id, `${where}.id`, LIMITS.idLength, false), onFailure: policy };
    } else {
      spec = checkText(item, where, LIMITS.idLength, false);
    }
    const id = typeof spec === "string" ? spec : spec.id;
    const earlier = policies.get(id);
    if (earlier !== undefined && earlier !== policy) throw new ValidationError(where, `lists ${JSON.stringify(id)} again with another failure policy (${earlier}, then ${policy})`);
    policies.set(id, policy);
    return spec;
  });
  return { dependencies, policies };
}

/**
 * Checks that a payload is a JSON object that survives the round trip through
 * jsonb unchanged, and returns a copy of it: nothing Skein stores or returns
 * shares objects with the caller's input.
 */
function checkPayload(value: unknown, field: string): JsonObject {
  if (typeof value !== "object" || value === null || Array.isArray(value) || !isPlainObject(value)) {
    throw new ValidationError(field, "must be a plain JSON object");
  }
  const copy = storableJson(value, field, "strict") as JsonObject;
  const size = Buffer.byteLength(JSON.stringify(copy));
  if (size > LIMITS.payloadBytes) throw new ValidationError(field, `is ${size} bytes as JSON; the limit is ${LIMITS.payloadBytes}`);
  return copy;
}
