import { Type, type Static, type TSchema } from "@sinclair/typebox";
import { INT4_MAX, LIMITS } from "../core/checks";
import { JobStatus, JobType, type CreateJobInput, type JsonObject } from "../core/types";

/**
 * The API's request shapes, one definition each (TypeBox): Fastify validates
 * every body, query and path parameter against them before a handler runs,
 * @fastify/swagger turns them into the OpenAPI document, and `Static<...>`
 * gives the handlers their TypeScript types. The limits are core's `LIMITS`.
 */

const literals = <T extends string>(values: readonly T[]) => Type.Union(values.map((v) => Type.Literal(v)));
const nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);

/** A queue, tenant, rate-limit or concurrency key, or a tag. */
export const Key = Type.String({ minLength: 1, maxLength: LIMITS.keyLength });
/** A job id. */
export const JobId = Type.String({ minLength: 1, maxLength: LIMITS.idLength });
/** A schedule's or a rate-limit key's name in a path. */
export const Name = Type.String({ minLength: 1, maxLength: LIMITS.nameLength });

const Dependency = Type.Union([JobId, Type.Object({ id: JobId, onFailure: Type.Optional(literals(["cancel", "ignore", "fail"])) }, { additionalProperties: false })]);

/** A job to create (`POST /api/jobs`, and each job of a graph or a task). */
export const JobInput = Type.Object(
  {
    id: Type.Optional(JobId),
    jobType: literals(Object.values(JobType)),
    name: Type.String({ minLength: 1, maxLength: LIMITS.nameLength }),
    description: Type.Optional(nullable(Type.String({ maxLength: LIMITS.descriptionLength }))),
    payload: Type.Optional(Type.Unsafe<JsonObject>({ type: "object" })),
    dependencies: Type.Optional(Type.Array(Dependency, { maxItems: LIMITS.dependencies })),
    maxRetries: Type.Optional(Type.Integer({ minimum: 0, maximum: LIMITS.maxRetries })),
    priority: Type.Optional(Type.Integer({ minimum: -INT4_MAX, maximum: INT4_MAX })),
    runAt: Type.Optional(Type.String({ format: "date-time" })),
    timeoutSeconds: Type.Optional(nullable(Type.Integer({ minimum: 1, maximum: LIMITS.timeoutSeconds }))),
    queue: Type.Optional(Key),
    tenant: Type.Optional(nullable(Key)),
    rateLimitKey: Type.Optional(nullable(Key)),
    rateLimitCost: Type.Optional(Type.Integer({ minimum: 1, maximum: INT4_MAX })),
    concurrencyKey: Type.Optional(nullable(Key)),
    tags: Type.Optional(Type.Array(Key, { maxItems: LIMITS.tags })),
  },
  { additionalProperties: false },
);
export type JobInputBody = Static<typeof JobInput>;
// What the schema admits, createJob takes: the compiler checks the two stay one shape.
export const asCreateJobInput = (body: JobInputBody): CreateJobInput => body;

/** A whole graph (`POST /api/graphs`). */
export const GraphInput = Type.Object({ jobs: Type.Array(JobInput, { minItems: 1, maxItems: 10_000 }) }, { additionalProperties: false });

/** A task (`POST /api/tasks`). */
export const TaskInput = Type.Object(
  { id: Type.Optional(JobId), tenant: Type.Optional(Key), name: Type.String({ minLength: 1, maxLength: LIMITS.nameLength }), jobs: Type.Array(JobInput, { minItems: 1, maxItems: 10_000 }) },
  { additionalProperties: false },
);

/** `{ id }` path parameters. */
export const IdParams = Type.Object({ id: JobId });
/** `{ name }` path parameters. */
export const NameParams = Type.Object({ name: Name });
/** A token id in a path. */
export const TokenParams = Type.Object({ id: Type.String({ pattern: "^[a-f0-9]{16}$" }) });

/** Path parameters naming a worker. */
export const WorkerParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 255 }) });

/** Body of `PUT /api/workers/:id/concurrency`. */
export const ConcurrencyInput = Type.Object({ maxConcurrentJobs: Type.Integer({ minimum: 1, maximum: 10_000 }) }, { additionalProperties: false });

/** Query of `GET /api/jobs`. */
export const JobsQuery = Type.Object(
  {
    status: Type.Optional(literals(Object.values(JobStatus))),
    tenant: Type.Optional(Key),
    queue: Type.Optional(Key),
    name: Type.Optional(Type.String({ minLength: 1, maxLength: 1000 })),
    scheduleName: Type.Optional(Type.String({ minLength: 1, maxLength: 1000 })),
    parentId: Type.Optional(Key),
    createdAfter: Type.Optional(Type.String({ format: "date-time" })),
    createdBefore: Type.Optional(Type.String({ format: "date-time" })),
    limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }),
  },
  { additionalProperties: false },
);

/** Query of `GET /api/jobs/:id/logs`. */
export const LogsQuery = Type.Object({ after: Type.Optional(Type.String({ pattern: "^[0-9]{1,18}$" })), limit: Type.Integer({ minimum: 1, maximum: 10_000, default: 1000 }) }, { additionalProperties: false });

/** Query of `GET /api/dlq`. */
export const DeadLettersQuery = Type.Object({ since: Type.Optional(Type.String({ format: "date-time" })), limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }) }, { additionalProperties: false });

/** Body of `POST /api/dlq/replay`: exactly one of ids, since or all. */
export const ReplayInput = Type.Object(
  { ids: Type.Optional(Type.Array(JobId, { minItems: 1, maxItems: 10_000 })), since: Type.Optional(Type.String({ format: "date-time" })), all: Type.Optional(Type.Boolean()) },
  { additionalProperties: false },
);

/** A flag body (`{ cascade }`, `{ downstream }`), which may be absent. */
export const flagBody = (name: string) => Type.Union([Type.Object({ [name]: Type.Optional(Type.Boolean()) }, { additionalProperties: false }), Type.Null()]);

/** Body of `POST /api/schedules`. */
export const ScheduleInput = Type.Object(
  {
    name: Name,
    cron: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    intervalSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 366 * 86_400 })),
    timezone: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
    catchUp: Type.Optional(literals(["once", "skip"])),
    jobTemplate: Type.Unsafe<Record<string, unknown>>({ type: "object" }),
  },
  { additionalProperties: false },
);

/** Body of `PUT /api/rate-limits/:name`. */
export const RateLimitInput = Type.Object(
  { perSecond: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 1e9 })), perMinute: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 1e9 })), burst: Type.Optional(Type.Number({ minimum: 1, maximum: 1e9 })) },
  { additionalProperties: false },
);

/** Body of `POST /api/tokens`. */
export const TokenInput = Type.Object({ tenant: Key, name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })) }, { additionalProperties: false });

/** Query of `GET /api/throughput`: the last `minutes`, per minute. */
export const ThroughputQuery = Type.Object({ minutes: Type.Integer({ minimum: 5, maximum: 7 * 24 * 60, default: 60 }) }, { additionalProperties: false });

/** Query of the event streams: a short-lived ticket (EventSource cannot send headers) and where to resume. */
export const StreamQuery = Type.Object(
  { ticket: Type.Optional(Type.String({ maxLength: 100 })), lastEventId: Type.Optional(Type.String({ maxLength: 100 })) },
  { additionalProperties: false },
);
