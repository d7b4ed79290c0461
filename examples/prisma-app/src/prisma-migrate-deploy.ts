import { createHash, randomUUID } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import pg from "pg";

/**
 * What `npx prisma migrate deploy` does for the application's own migrations:
 * apply each new prisma/migrations/<name>/migration.sql and record it in
 * public._prisma_migrations. In your application, run `prisma migrate deploy`;
 * this stand-in lets the example run where Prisma's schema engine cannot be
 * downloaded (offline CI), and does not matter to Skein.
 */
export async function prismaMigrateDeploy(url: string, dir = "prisma/migrations"): Promise<string[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
      "id" VARCHAR(36) PRIMARY KEY NOT NULL, "checksum" VARCHAR(64) NOT NULL, "finished_at" TIMESTAMPTZ,
      "migration_name" VARCHAR(255) NOT NULL, "logs" TEXT, "rolled_back_at" TIMESTAMPTZ,
      "started_at" TIMESTAMPTZ NOT NULL DEFAULT now(), "applied_steps_count" INTEGER NOT NULL DEFAULT 0)`);
    const done = new Set((await client.query<{ migration_name: string }>(`SELECT migration_name FROM "_prisma_migrations"`)).rows.map((r) => r.migration_name));
    const applied: string[] = [];
    for (const name of readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name).sort()) {
      if (done.has(name)) continue;
      const sql = readFileSync(`${dir}/${name}/migration.sql`);
      await client.query("BEGIN");
      await client.query(sql.toString("utf8"));
      await client.query(`INSERT INTO "_prisma_migrations" (id, checksum, migration_name, finished_at, applied_steps_count) VALUES ($1, $2, $3, now(), 1)`, [
        randomUUID(),
        createHash("sha256").update(sql).digest("hex"),
        name,
      ]);
      await client.query("COMMIT");
      applied.push(name);
    }
    return applied;
  } finally {
    await client.end();
  }
}
