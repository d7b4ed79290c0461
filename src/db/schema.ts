import { createHash } from "node:crypto";
import { ValidationError } from "../core/errors";

/** The PostgreSQL schema Skein uses unless told otherwise. */
export const DEFAULT_SCHEMA = "skein";

/** Skein's tables, all in its one schema. */
export const TABLES = [
  "jobs",
  "job_dependencies",
  "job_history",
  "job_events",
  "job_logs",
  "job_steps",
  "workers",
  "maintenance_runs",
  "rate_limits",
  "concurrency_limits",
  "tenant_weights",
  "tasks",
  "schedules",
  "schedule_ticks",
  "api_tokens",
  "stream_events",
  "stream_tickets",
  "paused_queues",
] as const;
/** One of Skein's tables. */
export type TableName = (typeof TABLES)[number];

/** Skein's notification channels (each schema has its own set). */
export type ChannelName = "jobs_ready" | "jobs_cancelled" | "workers_control";

// Lowercase only: an unquoted name in a Prisma datasource, a psql session or a
// DBA's query means the same schema. 48 characters leave room for the channel suffixes.
const NAME = /^[a-z_][a-z0-9_]{0,47}$/;

/**
 * Checks a schema name: lowercase letters, digits and underscores, starting
 * with a letter or underscore, at most 48 characters; not `public` (the
 * application's), not `information_schema` nor a `pg_` schema (PostgreSQL's).
 * @throws {@link ValidationError} naming `field`.
 */
export function checkSchemaName(name: unknown, field = "schema"): string {
  if (typeof name !== "string" || !NAME.test(name)) {
    throw new ValidationError(field, `must be a PostgreSQL schema name of lowercase letters, digits and underscores, starting with a letter or underscore, at most 48 characters (got ${JSON.stringify(name)})`);
  }
  if (name === "public") throw new ValidationError(field, `"public" belongs to the application; Skein keeps its tables in a schema of its own (default "${DEFAULT_SCHEMA}")`);
  if (name === "information_schema" || name.startsWith("pg_")) throw new ValidationError(field, `${JSON.stringify(name)} is reserved by PostgreSQL`);
  return name;
}

const known = new Map<string, SkeinSchema>();

/**
 * The names of everything Skein has in one PostgreSQL schema: its tables
 * (always written schema-qualified, so no statement depends on a
 * connection's `search_path`), its notification channels and its advisory
 * lock keys. Two schemas in one database share none of them.
 */
export class SkeinSchema {
  /** The quoted schema name, as SQL writes it. */
  readonly quoted: string;

  private constructor(readonly name: string) {
    this.quoted = `"${name}"`;
  }

  /** The schema named `name` (validated), default {@link DEFAULT_SCHEMA}. */
  static of(name: string = DEFAULT_SCHEMA): SkeinSchema {
    let schema = known.get(name);
    if (!schema) {
      schema = new SkeinSchema(checkSchemaName(name));
      known.set(name, schema);
    }
    return schema;
  }

  /** A table of this schema, qualified and quoted: `"skein"."jobs"`. */
  table(name: TableName): string {
    return `${this.quoted}."${name}"`;
  }

  /** A notification channel of this schema, e.g. `skein_jobs_ready` for the default schema. */
  channel(name: ChannelName): string {
    return `${this.name}_${name}`;
  }

  /** A 64-bit advisory lock key for `purpose` in this schema (as a decimal string for `pg_advisory_lock($1::bigint)`). */
  lockKey(purpose: string): string {
    return createHash("sha256").update(`skein:${this.name}:${purpose}`).digest().readBigInt64BE(0).toString();
  }
}
