import type { Argv, CommandModule } from "yargs";
import { createLogger } from "../core/logger";
import { buildConfig, type CommonFlags } from "./config";
import { openDatabase, type OpenDatabase } from "./database";
import { json } from "./format";

/** Flags every `skein` subcommand has. */
export type Flags = CommonFlags & { json?: boolean };

/** Opens the database for one subcommand, runs it and closes it. */
export async function withDatabase(args: Flags, fn: (db: OpenDatabase) => Promise<void>): Promise<void> {
  const config = buildConfig(args, process.env, Boolean(process.stderr.isTTY));
  const logger = createLogger({ level: args["log-level"] ? config.logLevel : "warn", format: config.logFormat });
  const db = await openDatabase(config, logger, { migrate: config.databaseUrl === undefined, maxConnections: 4 });
  try {
    await fn(db);
  } finally {
    await db.close();
  }
}

/** Prints JSON with --json, else the text. */
export function print(args: Flags, value: unknown, text: string): void {
  process.stdout.write((args.json ? json(value) : text) + "\n");
}

/** The connection flags of every command (`run-worker`, `init-worker`, `skein`). */
export const CONNECTION_FLAGS = {
  "database-url": { type: "string", describe: "PostgreSQL URL (else SKEIN_DATABASE_URL, DATABASE_URL, or the embedded server)" },
  "direct-database-url": {
    type: "string",
    describe: "PostgreSQL URL without a pooler, for migrations and LISTEN when --database-url goes through PgBouncer in transaction mode (else SKEIN_DIRECT_DATABASE_URL)",
  },
  schema: { type: "string", describe: "PostgreSQL schema of Skein's tables (else SKEIN_SCHEMA; default skein)" },
  "data-dir": { type: "string", describe: "Embedded server's data folder (else SKEIN_DATA_DIR; default ./.skein)" },
} as const;

/** Adds the flags every `skein` subcommand takes. */
export const common = (y: Argv) =>
  y.options({
    ...CONNECTION_FLAGS,
    "log-level": { type: "string", choices: ["error", "warn", "info", "debug"] },
    json: { type: "boolean", default: false, describe: "Print JSON" },
  });


/** A `skein` subcommand, its arguments' type inferred from its builder. */
export function command<U>(module: CommandModule<Flags, U>): CommandModule<Flags, U> {
  return module;
}
