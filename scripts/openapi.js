#!/usr/bin/env node
// Writes docs/openapi.json: the OpenAPI document that @fastify/swagger builds
// from the routes' JSON schemas (the same one `GET /openapi.json` serves).
// Needs a build (npm run build); does not connect to a database.
const { writeFileSync } = require("node:fs");
const path = require("node:path");
const { createPrismaClient } = require("../dist");
const { createServer } = require("../dist/server");

(async () => {
  const prisma = createPrismaClient("postgresql://localhost:1/unused");
  const app = await createServer({ prisma });
  await app.ready();
  const file = path.join(__dirname, "..", "docs", "openapi.json");
  writeFileSync(file, JSON.stringify(app.swagger(), null, 2) + "\n");
  await app.close();
  await prisma.$disconnect();
  console.log(`wrote ${path.relative(process.cwd(), file)}`);
})().catch((error) => {
  console.error(error);
  process.exit(1);
});
