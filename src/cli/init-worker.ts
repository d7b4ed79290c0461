#!/usr/bin/env node
import yargs from "yargs";
import { hideBin } from "yargs/helpers";
import { migrate } from "../db/migrator";
import { startEmbeddedDatabase } from "../db/embedded";
import { buildConfig, type CommonFlags } from "./config";
import { describeConnectionError } from "./database";
import { failUsage, runCli } from "./main";
import { CONNECTION_FLAGS } from "./command";

void runCli(async () => {
  const args = yargs(hideBin(process.argv))
    .scriptName("init-worker")
    .usage("$0 [options]\n\nApplies Skein's database migrations to its schema (idempotent; safe to run from several processes at once).")
    .options({
      ...CONNECTION_FLAGS,
      "move-from-public": { type: "boolean", default: false, describe: "Move a Skein 0.1.0 installation's tables from schema public into --schema first" },
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
    const result = await migrate(config.directUrl ?? url, { schema: config.schema, moveFromPublic: args["move-from-public"] }).catch((error: unknown) => {
      throw describeConnectionError(error, url);
    });
    if (args.json) process.stdout.write(JSON.stringify(result) + "\n");
    else {
      if (result.moved.length > 0) process.stdout.write(`moved ${result.moved.length} tables from schema public to schema ${result.schema}: ${result.moved.join(", ")}\n`);
      if (result.applied.length === 0) process.stdout.write(`schema ${result.schema} is up to date (${result.current.length} migrations)\n`);
      else process.stdout.write(`applied ${result.applied.length} migration(s) to schema ${result.schema}: ${result.applied.join(", ")}\n`);
    }
  } finally {
    await embedded?.stop();
  }
});
