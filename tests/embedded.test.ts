import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { canConnect as canQuery } from "../src/db/embedded";
import { startEmbeddedDatabase, type EmbeddedDatabase } from "../src";


describe("embedded PostgreSQL", () => {
  let dataDir: string;
  const started: EmbeddedDatabase[] = [];
  beforeAll(() => {
    dataDir = mkdtempSync(path.join(os.tmpdir(), "skein-embedded-"));
    chmodSync(dataDir, 0o755); // as root, the server runs as the postgres user
  });
  afterAll(async () => {
    for (const db of started) await db.stop({ force: true }).catch(() => undefined);
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("starts a server from node_modules, records its URL, and a second caller attaches to it", async () => {
    const first = await startEmbeddedDatabase({ dataDir, settings: { fsync: "off" } });
    started.push(first);
    expect(first.owned).toBe(true);
    expect(await canQuery(first.url)).toBe(true);
    const recorded = JSON.parse(readFileSync(path.join(dataDir, "server.json"), "utf8")) as { url: string };
    expect(recorded.url).toBe(first.url);

    const second = await startEmbeddedDatabase({ dataDir });
    expect(second.owned).toBe(false);
    expect(second.url).toBe(first.url);

    // The owner does not stop a server another client is still using...
    const other = new pg.Client({ connectionString: second.url });
    await other.connect();
    await first.stop();
    expect(await canQuery(first.url)).toBe(true);
    await second.stop(); // a non-owner never stops it
    expect(await canQuery(first.url)).toBe(true);
    await other.end();
    // ...and stops it once nobody else is connected.
    await first.stop();
    expect(await canQuery(first.url)).toBe(false);
  });

  it("keeps its data between runs", async () => {
    const a = await startEmbeddedDatabase({ dataDir });
    started.push(a);
    expect(a.owned).toBe(true); // the previous server was stopped: this call started a new one
    const client = new pg.Client({ connectionString: a.url });
    await client.connect();
    await client.query("CREATE TABLE IF NOT EXISTS kept (v text)");
    await client.query("INSERT INTO kept VALUES ('still here')");
    await client.end();
    await a.stop();
    const b = await startEmbeddedDatabase({ dataDir });
    started.push(b);
    const again = new pg.Client({ connectionString: b.url });
    await again.connect();
    const { rows } = await again.query<{ v: string }>("SELECT v FROM kept");
    await again.end();
    expect(rows).toEqual([{ v: "still here" }]);
    expect(existsSync(path.join(dataDir, "pgdata", "PG_VERSION"))).toBe(true);
    await b.stop();
  });
});
