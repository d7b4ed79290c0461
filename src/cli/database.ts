import { createPrismaClient, type PrismaClient } from "../db/client";
import { databaseFor, type Database } from "../db/database";
import { startEmbeddedDatabase, type EmbeddedDatabase } from "../db/embedded";
import { assertMigrated, migrate } from "../db/migrator";
import { JobManager } from "../jobs/JobManager";
import type { Logger } from "../core/logger";
import { redact, type CliConfig } from "./config";

/** An open connection for a command: the URL, a Prisma client and a JobManager. */
export interface OpenDatabase {
  url: string;
  prisma: PrismaClient;
  jobManager: JobManager;
  /** For the CLI's read-only reports (status). */
  db: Database;
  /** Closes the client; stops the embedded server if this command started it and nobody else uses it. */
  close(): Promise<void>;
}

/** Raised when the database cannot be reached: printed as one line, exit code 1. */
export class DatabaseUnavailableError extends Error {
  override name = "DatabaseUnavailableError";
}

/**
 * Opens the configured database, or the embedded one (starting it, or
 * attaching to the one another command started). With `migrate`, applies
 * pending migrations first (idempotent, safe with concurrent callers).
 */
export async function openDatabase(config: CliConfig, logger: Logger, options: { migrate?: boolean; maxConnections?: number; moveFromPublic?: boolean } = {}): Promise<OpenDatabase> {
  let embedded: EmbeddedDatabase | undefined;
  let url = config.databaseUrl;
  if (!url) {
    embedded = await startEmbeddedDatabase({ dataDir: config.dataDir, log: (message) => logger.info(message) });
    url = embedded.url;
  }
  try {
    if (options.migrate) {
      const { applied } = await migrate(config.directUrl ?? url, { schema: config.schema, log: (message) => logger.info(message) });
      if (applied.length === 0) logger.debug("database schema is up to date");
    }
    const prisma = createPrismaClient(url, {
      schema: config.schema,
      directUrl: config.directUrl,
      maxConnections: options.maxConnections,
      onPoolError: (error) => logger.warn("database connection error", { error: error.message }),
    });
    const jobManager = new JobManager(prisma, { logger });
    const db = databaseFor(prisma);
    // Probe through the pg pool: its errors carry codes (ECONNREFUSED, 28P01, 3D000...).
    await assertMigrated(db).catch(async (error: unknown) => {
      await prisma.$disconnect().catch(() => undefined);
      throw error;
    });
    return {
      url,
      prisma,
      jobManager,
      db,
      async close() {
        await prisma.$disconnect().catch(() => undefined);
        await embedded?.stop().catch(() => undefined);
      },
    };
  } catch (error) {
    await embedded?.stop().catch(() => undefined);
    throw describeConnectionError(error, url);
  }
}

// 53300: too many connections; 57P03: the server is starting or shutting down.
const UNREACHABLE = new Set(["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "ETIMEDOUT", "EHOSTUNREACH", "ECONNRESET", "28P01", "28000", "3D000", "53300", "57P03"]);

/** Turns a connection failure into a one-line message naming the (redacted) URL; other errors pass through. */
export function describeConnectionError(error: unknown, url: string): unknown {
  const e = error as { code?: string; message?: string; cause?: { code?: string; message?: string }; errors?: Array<{ code?: string }> };
  const code = e?.code ?? e?.cause?.code ?? e?.errors?.[0]?.code;
  const message = String(e?.message ?? e?.cause?.message ?? error);
  const looksUnreachable =
    (code !== undefined && UNREACHABLE.has(code)) || /ECONNREFUSED|ENOTFOUND|EAI_AGAIN|connect|reach database|password authentication|does not exist|timeout/i.test(message);
  if (!looksUnreachable) return error;
  const reason = message.split("\n").find((line) => line.trim() !== "") ?? "unknown error";
  return new DatabaseUnavailableError(`cannot reach the database at ${redact(url)}: ${reason.trim()}`);
}
