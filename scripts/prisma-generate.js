#!/usr/bin/env node
// Regenerates the committed Prisma client (src/db/generated/prisma) from
// prisma/schema.prisma. `prisma generate` does not use Prisma's schema engine,
// so when the engine cannot be downloaded any executable stands in for it.
const { spawnSync } = require("node:child_process");
const path = require("node:path");

const env = { ...process.env };
if (!env.PRISMA_SCHEMA_ENGINE_BINARY) env.PRISMA_SCHEMA_ENGINE_BINARY = process.execPath;
const args = process.argv.slice(2);
const cli = path.join(__dirname, "..", "node_modules", "prisma", "build", "index.js");
const result = spawnSync(process.execPath, [cli, "generate", ...args], { stdio: "inherit", env });
process.exit(result.status ?? 1);
