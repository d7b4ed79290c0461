import { createHash } from "node:crypto";
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, appendFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { DEFAULT_MIGRATIONS_DIR } from "../src/db";
import { migrate, MigrationError } from "../src";
import { createTestDatabase, queryOnce as query, type TestDatabase } from "./helpers/db";

const shipped = readdirSync(DEFAULT_MIGRATIONS_DIR, { withFileTypes: true })
  .filter((e) => e.isDirectory())
  .map((e) => e.name)
  .sort();

/** A copy of the shipped migrations that a test may change. */
function copyMigrations(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), "skein-migrations-"));
  cpSync(DEFAULT_MIGRATIONS_DIR, dir, { recursive: true });
  return dir;
}

describe("migrate()", () => {
  let db: TestDatabase;
  const dirs: string[] = [];
  beforeEach(async () => {
    db = await createTestDatabase({ migrated: false });
  });
  afterEach(async () => {
    await db.drop();
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  it("applies every migration in order and records each exactly as Prisma Migrate does", async () => {
    const result = await migrate(db.url);
    expect(result.applied).toEqual(shipped);
    const columns = await query<{ column_name: string; data_type: string; is_nullable: string }>(
      db.url,
      `SELECT column_name, data_type, is_nullable FROM information_schema.columns
       WHERE table_name = '_prisma_migrations' ORDER BY ordinal_position`,
    );
    expect(columns.map((c) => [c.column_name, c.data_type, c.is_nullable])).toEqual([
      ["id", "character varying", "NO"],
      ["checksum", "character varying", "NO"],
      ["finished_at", "timestamp with time zone", "YES"],
      ["migration_name", "character varying", "NO"],
      ["logs", "text", "YES"],
      ["rolled_back_at", "timestamp with time zone", "YES"],
      ["started_at", "timestamp with time zone", "NO"],
      ["applied_steps_count", "integer", "NO"],
    ]);
    const rows = await query<{ migration_name: string; checksum: string; finished_at: Date | null; applied_steps_count: number; rolled_back_at: Date | null }>(
      db.url,
      `SELECT migration_name, checksum, finished_at, applied_steps_count, rolled_back_at FROM "_prisma_migrations" ORDER BY migration_name`,
    );
    expect(rows.map((r) => r.migration_name)).toEqual(shipped);
    for (const row of rows) {
      const file = readFileSync(path.join(DEFAULT_MIGRATIONS_DIR, row.migration_name, "migration.sql"));
      expect(row.checksum).toBe(createHash("sha256").update(file).digest("hex"));
      expect(row.finished_at).toBeInstanceOf(Date);
      expect(row.rolled_back_at).toBeNull();
      expect(row.applied_steps_count).toBe(1);
    }
  });

  it("is idempotent", async () => {
    await migrate(db.url);
    const again = await migrate(db.url);
    expect(again.applied).toEqual([]);
    expect(again.current).toEqual(shipped);
    const [{ n }] = await query<{ n: number }>(db.url, `SELECT count(*)::int AS n FROM "_prisma_migrations"`);
    expect(n).toBe(shipped.length);
  });

  it("is safe when many callers migrate at once: each migration is applied once", async () => {
    const results = await Promise.all(Array.from({ length: 8 }, () => migrate(db.url)));
    expect(results.flatMap((r) => r.applied).sort()).toEqual(shipped);
    const [{ n }] = await query<{ n: number }>(db.url, `SELECT count(*)::int AS n FROM "_prisma_migrations"`);
    expect(n).toBe(shipped.length);
  });

  it("applies a new migration added later, and only that one", async () => {
    await migrate(db.url);
    const dir = copyMigrations();
    dirs.push(dir);
    mkdirSync(path.join(dir, "29990101000000_extra"));
    writeFileSync(path.join(dir, "29990101000000_extra", "migration.sql"), `CREATE TABLE "extra" ("id" INTEGER PRIMARY KEY);`);
    const result = await migrate(db.url, { migrationsDir: dir });
    expect(result.applied).toEqual(["29990101000000_extra"]);
  });

  it("refuses, changing nothing, when an applied migration's file has changed", async () => {
    await migrate(db.url);
    const dir = copyMigrations();
    dirs.push(dir);
    appendFileSync(path.join(dir, shipped[0], "migration.sql"), "\n-- edited after it was applied\n");
    mkdirSync(path.join(dir, "29990101000000_extra"));
    writeFileSync(path.join(dir, "29990101000000_extra", "migration.sql"), `CREATE TABLE "extra" ("id" INTEGER PRIMARY KEY);`);
    await expect(migrate(db.url, { migrationsDir: dir })).rejects.toThrow(MigrationError);
    await expect(migrate(db.url, { migrationsDir: dir })).rejects.toThrow(/was changed after it was applied/);
    const extra = await query(db.url, `SELECT 1 FROM information_schema.tables WHERE table_name = 'extra'`);
    expect(extra).toHaveLength(0);
  });

  it("refuses when the database has migrations this version does not know", async () => {
    await migrate(db.url);
    await query(
      db.url,
      `INSERT INTO "_prisma_migrations" (id, checksum, migration_name, finished_at, applied_steps_count)
       VALUES ('00000000-0000-0000-0000-000000000001', 'x', '29990101000000_from_the_future', now(), 1)`,
    );
    await expect(migrate(db.url)).rejects.toThrow(/does not know \(29990101000000_from_the_future\).*upgrade Skein/);
  });

  it("a failing migration is rolled back, recorded as failed with its error, and blocks later runs until resolved", async () => {
    const dir = copyMigrations();
    dirs.push(dir);
    mkdirSync(path.join(dir, "29990101000000_broken"));
    writeFileSync(path.join(dir, "29990101000000_broken", "migration.sql"), `CREATE TABLE "half" ("id" INTEGER);\nSELECT no_such_function();`);
    await expect(migrate(db.url, { migrationsDir: dir })).rejects.toThrow(/migration 29990101000000_broken failed: .*no_such_function/);
    const half = await query(db.url, `SELECT 1 FROM information_schema.tables WHERE table_name = 'half'`);
    expect(half).toHaveLength(0); // nothing half-written
    const [row] = await query<{ finished_at: Date | null; logs: string }>(
      db.url,
      `SELECT finished_at, logs FROM "_prisma_migrations" WHERE migration_name = '29990101000000_broken'`,
    );
    expect(row.finished_at).toBeNull();
    expect(row.logs).toMatch(/no_such_function/);
    await expect(migrate(db.url, { migrationsDir: dir })).rejects.toThrow(/failed earlier and was not resolved/);
  });

  it("names a missing migrations folder", async () => {
    await expect(migrate(db.url, { migrationsDir: "/nonexistent/skein-migrations" })).rejects.toThrow(/migrations folder not found/);
  });
});
