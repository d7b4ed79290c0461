import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, copyFileSync, statSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { createTestDatabase, queryOnce, type TestDatabase } from "./helpers/db";

const root = path.resolve(__dirname, "..");
const committedClient = path.join(root, "src", "db", "generated", "prisma");

/** Every file under `dir`, as paths relative to it. */
function listFiles(dir: string, prefix = ""): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    return statSync(full).isDirectory() ? listFiles(full, path.join(prefix, name)) : [path.join(prefix, name)];
  });
}

describe("prisma/schema.prisma and the committed client", () => {
  it("regenerating the client from the schema reproduces the committed client exactly", () => {
    // Generate into a temporary copy of the repository layout, so the
    // generator's relative output path resolves the same way.
    const tmp = mkdtempSync(path.join(os.tmpdir(), "skein-generate-"));
    try {
      mkdirSync(path.join(tmp, "prisma"));
      copyFileSync(path.join(root, "prisma", "schema.prisma"), path.join(tmp, "prisma", "schema.prisma"));
      const result = spawnSync(process.execPath, [path.join(root, "node_modules", "prisma", "build", "index.js"), "generate", "--schema", "prisma/schema.prisma"], {
        cwd: tmp,
        // `generate` does not use the schema engine; any executable stands in for its download.
        env: { ...process.env, PRISMA_SCHEMA_ENGINE_BINARY: process.execPath, PRISMA_HIDE_UPDATE_MESSAGE: "1" },
        encoding: "utf8",
        timeout: 60_000,
      });
      expect({ status: result.status, stderr: result.status === 0 ? "" : result.stderr }).toEqual({ status: 0, stderr: "" });
      const fresh = path.join(tmp, "src", "db", "generated", "prisma");
      const files = listFiles(committedClient).sort();
      expect(listFiles(fresh).sort()).toEqual(files);
      const differing = files.filter((file) => readFileSync(path.join(fresh, file), "utf8") !== readFileSync(path.join(committedClient, file), "utf8"));
      // If this fails: run `npm run prisma:generate` and commit src/db/generated/prisma.
      expect(differing).toEqual([]);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});

interface RuntimeField {
  name: string;
  kind: string;
  dbName?: string;
}

/** The tables and columns the committed client reads and writes, from its runtime data model. */
function clientTables(): Map<string, string[]> {
  const source = readFileSync(path.join(committedClient, "internal", "class.ts"), "utf8");
  const match = /config\.runtimeDataModel = JSON\.parse\((".*")\)/.exec(source);
  if (!match) throw new Error("runtimeDataModel not found in the generated client");
  const model = JSON.parse(JSON.parse(match[1]) as string) as { models: Record<string, { dbName: string | null; fields: RuntimeField[] }> };
  const tables = new Map<string, string[]>();
  for (const [name, m] of Object.entries(model.models)) {
    tables.set(m.dbName ?? name, m.fields.filter((f) => f.kind === "scalar").map((f) => f.dbName ?? f.name).sort());
  }
  // Columns of a type Prisma cannot read (`Unsupported("xid8")`) are in the
  // schema but not in the runtime model: take them from the schema itself.
  const schema = readFileSync(path.join(root, "prisma", "schema.prisma"), "utf8");
  for (const block of schema.matchAll(/^model \w+ \{([^}]*)\}/gm)) {
    const table = /@@map\("([^"]+)"\)/.exec(block[1])?.[1];
    const unsupported = [...block[1].matchAll(/^\s*(\w+)\s+Unsupported\([^)]*\)[^\n]*?(?:@map\("([^"]+)"\))?[^\n]*$/gm)];
    if (!table || unsupported.length === 0) continue;
    tables.set(table, [...(tables.get(table) ?? []), ...unsupported.map((u) => u[2] ?? u[1])].sort());
  }
  return tables;
}

describe("the migrations and the schema", () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase(); // copied from the template that global setup migrated with Skein's migrator
  });
  afterAll(() => db?.drop());

  it("the migrated database has exactly the tables and columns the client's models describe", async () => {
    const rows = await queryOnce<{ table_name: string; column_name: string }>(
      db.url,
      `SELECT table_name, column_name FROM information_schema.columns
       WHERE table_schema = 'skein' AND table_name <> '_prisma_migrations'`,
    );
    const database = new Map<string, string[]>();
    for (const row of rows) database.set(row.table_name, [...(database.get(row.table_name) ?? []), row.column_name]);
    for (const columns of database.values()) columns.sort();
    expect(Object.fromEntries([...database].sort())).toEqual(Object.fromEntries([...clientTables()].sort()));
  });

  it("jobs has its own autovacuum settings, indexes included, so claims do not walk a growing head of dead entries", async () => {
    const rows = await queryOnce<{ reloptions: string[] | null }>(db.url, "SELECT reloptions FROM pg_class WHERE oid = 'jobs'::regclass");
    expect(rows[0]?.reloptions ?? []).toEqual(
      expect.arrayContaining(["autovacuum_vacuum_scale_factor=0.01", "autovacuum_vacuum_threshold=1000", "vacuum_index_cleanup=on"]),
    );
  });
});
