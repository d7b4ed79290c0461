import { execFileSync, spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { createTestDatabase, type TestDatabase } from "./helpers/db";

/**
 * examples/prisma-app, run as its README says, on a fresh database: its own
 * migrations first, Skein's into schema "skein", then the application
 * enqueueing in its own transactions with its own generated client.
 */

const root = path.resolve(__dirname, "..");

describe("examples/prisma-app", () => {
  let work: string;
  let app: string;
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase({ migrated: false });
    work = mkdtempSync(path.join(os.tmpdir(), "skein-example-"));
    app = path.join(work, "prisma-app");
    cpSync(path.join(root, "examples", "prisma-app"), app, {
      recursive: true,
      filter: (source) => !/[/\\](node_modules|\.skein)([/\\]|$)/.test(source),
    });
    const manifest = JSON.parse(readFileSync(path.join(app, "package.json"), "utf8")) as { dependencies: Record<string, string> };
    manifest.dependencies.skein = `file:${root}`;
    writeFileSync(path.join(app, "package.json"), JSON.stringify(manifest, null, 2));
    execFileSync("npm", ["install", "--omit=dev", "--no-package-lock", "--prefer-offline", "--no-audit", "--no-fund"], { cwd: app, stdio: "ignore" });
  }, 300_000);
  afterAll(async () => {
    if (work) rmSync(work, { recursive: true, force: true });
    await db?.drop();
  });

  it("migrates beside the application's own migrations and enqueues in its transactions", async () => {
    const run = spawnSync("npm", ["run", "example"], { cwd: app, encoding: "utf8", timeout: 180_000, env: { ...process.env, DATABASE_URL: db.url } });
    const output = `${run.stdout}${run.stderr}`;
    if (run.status !== 0) throw new Error(`npm run example failed:\n${output}`);
    expect(output).toMatch(/application migrations applied: 20250101000000_init/);
    expect(output).toMatch(/Skein migrations applied to schema skein: \d+/);
    expect(output).toMatch(/a failed signup \(payment provider said no\) left no user and no job/);
    expect(output).toMatch(/welcome job completed: \{"sentTo":"ada\+\d+@example.com"\}/);

    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      const history = await client.query(`SELECT migration_name FROM public."_prisma_migrations"`);
      expect(history.rows).toEqual([{ migration_name: "20250101000000_init" }]);
      const publicTables = await client.query(`SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1`);
      expect(publicTables.rows.map((r) => r.table_name)).toEqual(["_prisma_migrations", "jobs", "users"]);
      const skeinJobs = await client.query(`SELECT count(*)::int AS n FROM skein.job_history WHERE name = 'welcome email' AND status = 'completed'`);
      expect(skeinJobs.rows[0].n).toBe(1);
    } finally {
      await client.end();
    }
  }, 200_000);
});
