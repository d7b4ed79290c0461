import path from "node:path";
import type { LogLevel } from "../core/logger";
import { checkSchemaName, DEFAULT_SCHEMA } from "../db/schema";
import { ValidationError } from "../core/errors";

/**
 * The CLI's only contact with the environment: it turns flags and
 * environment variables into this object, which is passed down. Library
 * code never reads process.env.
 */
export interface CliConfig {
  /** An explicit database URL, or undefined to use the embedded server. */
  databaseUrl: string | undefined;
  /** A URL that reaches PostgreSQL without a pooler: migrations and LISTEN go there. */
  directUrl: string | undefined;
  /** The PostgreSQL schema of Skein's tables. */
  schema: string;
  /** Where the embedded server keeps its data (and its URL, for other commands to attach). */
  dataDir: string;
  logLevel: LogLevel;
  /** Human-readable log lines (a terminal) or JSON lines. */
  logFormat: "json" | "pretty";
  /** Agent modules by agent name, from SKEIN_AGENT_CONFIG. */
  agentConfig: Record<string, string>;
  /** The HTTP API's admin token, from SKEIN_ADMIN_TOKEN. */
  adminToken: string | undefined;
}

/** Flags every command accepts. */
export interface CommonFlags {
  "database-url"?: string;
  "direct-database-url"?: string;
  schema?: string;
  "data-dir"?: string;
  "log-level"?: string;
}

export const LOG_LEVELS: readonly LogLevel[] = ["error", "warn", "info", "debug"];

/** Raised for bad flags or environment: printed as one line, exit code 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** Builds the config from parsed flags and an environment. */
export function buildConfig(flags: CommonFlags, env: NodeJS.ProcessEnv, isTty: boolean): CliConfig {
  const databaseUrl = nonEmpty(flags["database-url"]) ?? nonEmpty(env.SKEIN_DATABASE_URL) ?? nonEmpty(env.DATABASE_URL);
  if (databaseUrl !== undefined && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    throw new UsageError(`invalid database URL ${JSON.stringify(redact(databaseUrl))}: expected postgresql://user:password@host:port/database`);
  }
  const directUrl = nonEmpty(flags["direct-database-url"]) ?? nonEmpty(env.SKEIN_DIRECT_DATABASE_URL);
  if (directUrl !== undefined && !/^postgres(ql)?:\/\//.test(directUrl)) {
    throw new UsageError(`invalid direct database URL ${JSON.stringify(redact(directUrl))}: expected postgresql://user:password@host:port/database`);
  }
  if (directUrl !== undefined && databaseUrl === undefined) throw new UsageError("--direct-database-url (SKEIN_DIRECT_DATABASE_URL) needs a database URL too");
  const logLevel = (flags["log-level"] ?? env.SKEIN_LOG_LEVEL ?? "info") as LogLevel;
  if (!LOG_LEVELS.includes(logLevel)) throw new UsageError(`invalid --log-level ${JSON.stringify(logLevel)}: choose one of ${LOG_LEVELS.join(", ")}`);
  return {
    databaseUrl,
    directUrl,
    schema: schemaFrom(nonEmpty(flags.schema) ?? nonEmpty(env.SKEIN_SCHEMA) ?? DEFAULT_SCHEMA, flags.schema !== undefined ? "--schema" : "SKEIN_SCHEMA"),
    dataDir: path.resolve(nonEmpty(flags["data-dir"]) ?? nonEmpty(env.SKEIN_DATA_DIR) ?? ".skein"),
    logLevel,
    logFormat: isTty ? "pretty" : "json",
    agentConfig: parseAgentConfig(env.SKEIN_AGENT_CONFIG),
    adminToken: adminToken(env.SKEIN_ADMIN_TOKEN),
  };
}

function schemaFrom(name: string, source: string): string {
  try {
    return checkSchemaName(name, source);
  } catch (error) {
    if (error instanceof ValidationError) throw new UsageError(error.message);
    throw error;
  }
}

function adminToken(value: string | undefined): string | undefined {
  const token = nonEmpty(value);
  if (token !== undefined && token.length < 16) throw new UsageError("SKEIN_ADMIN_TOKEN must be at least 16 characters");
  return token;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === "" ? undefined : value.trim();
}

function parseAgentConfig(text: string | undefined): Record<string, string> {
  if (text === undefined || text.trim() === "") return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new UsageError("SKEIN_AGENT_CONFIG must be JSON mapping agent names to module specifiers");
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new UsageError("SKEIN_AGENT_CONFIG must be a JSON object");
  for (const [name, spec] of Object.entries(parsed)) {
    if (typeof spec !== "string" || spec === "") throw new UsageError(`SKEIN_AGENT_CONFIG.${name} must be a module specifier string`);
  }
  return parsed as Record<string, string>;
}

/** A URL with its password hidden, for messages. */
export function redact(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = "***";
    return parsed.toString();
  } catch {
    return url.replace(/\/\/([^:/@]+):[^@]*@/, "//$1:***@");
  }
}
