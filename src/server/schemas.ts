/**
 * JSON schemas of the API's bodies, queries and parameters. Fastify validates
 * every request against them (a bad one gets a 400 naming the field) and
 * @fastify/swagger turns them into the OpenAPI document.
 */

const key = { type: "string", minLength: 1, maxLength: 255 } as const;

/** A dependency: an id, or `{ id, onFailure }`. */
const dependency = {
  anyOf: [
    key,
    {
      type: "object",
      required: ["id"],
      additionalProperties: false,
      properties: { id: key, onFailure: { type: "string", enum: ["cancel", "ignore", "fail"] } },
    },
  ],
} as const;

/** The body of `POST /api/jobs` (and each job of a graph). */
export const jobInput = {
  type: "object",
  required: ["jobType", "name"],
  additionalProperties: false,
  properties: {
    id: key,
    jobType: { type: "string", enum: ["agent", "query"] },
    name: { type: "string", minLength: 1, maxLength: 1000 },
    description: { type: ["string", "null"], maxLength: 100000 },
    payload: { type: "object" },
    dependencies: { type: "array", maxItems: 100000, items: dependency },
    maxRetries: { type: "integer", minimum: 0, maximum: 1000 },
    priority: { type: "integer", minimum: -2147483647, maximum: 2147483647 },
    runAt: { type: "string", format: "date-time" },
    timeoutSeconds: { type: ["integer", "null"], minimum: 1, maximum: 604800 },
    queue: key,
    tenant: { anyOf: [key, { type: "null" }] },
    rateLimitKey: { anyOf: [key, { type: "null" }] },
    rateLimitCost: { type: "integer", minimum: 1, maximum: 2147483647 },
    concurrencyKey: { anyOf: [key, { type: "null" }] },
    tags: { type: "array", maxItems: 100, items: key },
  },
} as const;

/** `{ id }` path parameters. */
export const idParams = { type: "object", required: ["id"], properties: { id: key } } as const;

/** `{ name }` path parameters. */
export const nameParams = { type: "object", required: ["name"], properties: { name: { type: "string", minLength: 1, maxLength: 1000 } } } as const;

/** Query of `GET /api/jobs`. */
export const jobsQuery = {
  type: "object",
  additionalProperties: false,
  properties: {
    status: { type: "string", enum: ["pending", "running", "completed", "failed", "cancelled"] },
    tenant: key,
    queue: key,
    limit: { type: "integer", minimum: 1, maximum: 1000, default: 100 },
  },
} as const;

/** `{ error, field? }`: every error response. */
export const errorReply = {
  type: "object",
  properties: { error: { type: "string" }, message: { type: "string" }, field: { type: "string" } },
} as const;
