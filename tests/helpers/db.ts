import { randomBytes } from "node:crypto";
import pg from "pg";
import { createPrismaClient, JobManager, type PrismaClient } from "../../src";

/** A database of its own for one test file, copied from the migrated template. */
export interface TestDatabase {
  url: string;
  name: string;
  drop(): Promise<void>;
}

/**
 * Connection settings for the tests' own raw SQL (assertions, fault
 * injection): Skein's tables by their bare names. Skein's own connections
 * never rely on a search path; these do, for brevity.
 */
export const SKEIN_SEARCH_PATH = "-c search_path=skein,public";

function adminUrl(): string {
  const url = process.env.SKEIN_TEST_ADMIN_URL;
  if (!url) throw new Error("SKEIN_TEST_ADMIN_URL is not set: run the tests through jest (its global setup starts PostgreSQL)");
  return url;
}

/** Runs one statement on its own connection to `url` and returns the rows. */
export async function queryOnce<R extends pg.QueryResultRow>(url: string, text: string, values: unknown[] = []): Promise<R[]> {
  const client = new pg.Client({ connectionString: url, options: SKEIN_SEARCH_PATH });
  await client.connect();
  try {
    return (await client.query<R>(text, values)).rows;
  } finally {
    await client.end();
  }
}

/** Creates a fresh, migrated database. */
export async function createTestDatabase(options: { migrated?: boolean } = {}): Promise<TestDatabase> {
  const name = `skein_test_${randomBytes(6).toString("hex")}`;
  const admin = new pg.Client({ connectionString: adminUrl() });
  await admin.connect();
  try {
    const template = options.migrated === false ? "template0" : (process.env.SKEIN_TEST_TEMPLATE as string);
    await admin.query(`CREATE DATABASE ${admin.escapeIdentifier(name)} TEMPLATE ${admin.escapeIdentifier(template)}`);
  } finally {
    await admin.end();
  }
  const url = new URL(adminUrl());
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    name,
    async drop() {
      const client = new pg.Client({ connectionString: adminUrl() });
      await client.connect();
      try {
        await client.query(`DROP DATABASE IF EXISTS ${client.escapeIdentifier(name)} WITH (FORCE)`);
      } finally {
        await client.end();
      }
    },
  };
}

/** A test file's database with a Prisma client, a JobManager and a raw pg pool for assertions. */
export interface TestContext {
  db: TestDatabase;
  prisma: PrismaClient;
  jobManager: JobManager;
  pool: pg.Pool;
}

/**
 * Registers beforeAll/afterAll hooks that give the file its own database.
 * Read the fields inside tests (they are set in beforeAll).
 */
export function useTestDatabase(): TestContext {
  const ctx = {} as TestContext;
  beforeAll(async () => {
    ctx.db = await createTestDatabase();
    ctx.prisma = createPrismaClient(ctx.db.url);
    ctx.jobManager = new JobManager(ctx.prisma);
    ctx.pool = new pg.Pool({ connectionString: ctx.db.url, max: 4, options: SKEIN_SEARCH_PATH });
    // An idle pooled connection that the server ends (a test terminating backends) is not a test failure.
    ctx.pool.on("error", () => undefined);
  });
  afterAll(async () => {
    await ctx.prisma?.$disconnect();
    await ctx.pool?.end();
    await ctx.db?.drop();
  });
  return ctx;
}

/** Deletes every job, edge and history row (between tests of one file). */
export async function truncateAll(pool: pg.Pool): Promise<void> {
  await pool.query("TRUNCATE jobs, job_dependencies, job_history CASCADE");
}
