// One lookup by primary key through the generated client's typed API, as a
// statement, and as a prepared statement, 3,000 times each, three rounds.
//   npm run build && node bench/typed-vs-raw.js
const path = require("path");
const skein = require(path.resolve(__dirname, "..", "dist"));
const { databaseFor } = require(path.resolve(__dirname, "..", "dist", "db", "database"));
const { sql, statement, T } = require(path.resolve(__dirname, "..", "dist", "db", "sql", "template"));
(async () => {
  const server = await skein.startEmbeddedDatabase({ dataDir: require("node:fs").mkdtempSync(require("node:path").join(require("node:os").tmpdir(), "skein-typed-")), settings: { fsync: "off" } });
  await skein.migrate(server.url);
  const prisma = skein.createPrismaClient(server.url, { maxConnections: 1 });
  const db = databaseFor(prisma);
  await prisma.apiToken.deleteMany({});
  await prisma.apiToken.create({ data: { id: "0123456789abcdef", tenant: "orgA", secretHash: "00" } });
  const raw = statement((p) => sql`SELECT * FROM ${T.api_tokens} WHERE id = ${p.id}`);
  const rawPrepared = statement((p) => sql`SELECT * FROM ${T.api_tokens} WHERE id = ${p.id} `, { prepare: true });
  const typed = () => prisma.apiToken.findUnique({ where: { id: "0123456789abcdef" } });
  const cases = { typed, raw: () => raw.one(db, { id: "0123456789abcdef" }), rawPrepared: () => rawPrepared.one(db, { id: "0123456789abcdef" }) };
  for (const round of [1, 2, 3]) {
    for (const [name, fn] of Object.entries(cases)) {
      for (let i = 0; i < 200; i++) await fn();
      const n = 3000, cpu0 = process.cpuUsage(), t0 = process.hrtime.bigint();
      for (let i = 0; i < n; i++) await fn();
      const ms = Number(process.hrtime.bigint() - t0) / 1e6, cpu = process.cpuUsage(cpu0);
      console.log(`round ${round} ${name.padEnd(12)} ${(ms * 1000 / n).toFixed(1)} us/call wall, ${((cpu.user + cpu.system) / n).toFixed(1)} us/call client CPU`);
    }
  }
  await prisma.$disconnect();
  await server.stop({ force: true });
})();
