#!/usr/bin/env node
import yargs from "yargs";
import { hideBin } from "yargs/helpers";
import { migrate } from "../db/migrator";
import { startEmbeddedDatabase } from "../db/embedded";
import { buildConfig, type CommonFlags } from "./config";
import { describeConnectionError } from "./database";
import { failUsage, runCli } from "./main";

void runCli(async () => {
  const args = yargs(hideBin(process.argv))
    .scriptName("init-worker")
    .usage("$0 [options]\n\nApplies Skein's database migrations (idempotent; safe to run from several processes at once).")
    .options({
      "database-url": { type: "string", describe: "PostgreSQL URL (else SKEIN_DATABASE_URL, DATABASE_URL, or the embedded server)" },
      "data-dir": { type: "string", describe: "Embedded server's data folder (default ./.skein)" },
      "log-level": { type: "string", choices: ["error", "warn", "info", "debug"], default: "info" },
      json: { type: "boolean", default: false, describe: "Print the result as JSON" },
    })
    .strict()
    .fail(failUsage)
    .version(false)
    .help()
    .parseSync();
  const config = buildConfig(args as CommonFlags, process.env, Boolean(process.stderr.isTTY));
  const embedded = config.databaseUrl ? undefined : await startEmbeddedDatabase({ dataDir: config.dataDir });
  const url = config.databaseUrl ?? (embedded?.url as string);
  try {
    const result = await migrate(url).catch((error: unknown) => {
      throw describeConnectionError(error, url);
    });
    if (args.json) process.stdout.write(JSON.stringify(result) + "\n");
    else if (result.applied.length === 0) process.stdout.write(`database is up to date (${result.current.length} migrations)\n`);
    else process.stdout.write(`applied ${result.applied.length} migration(s): ${result.applied.join(", ")}\n`);
  } finally {
    await embedded?.stop();
  }
});
