#!/usr/bin/env node
import yargs from "yargs";
import { hideBin } from "yargs/helpers";
import { buildConfig } from "./config";
import { common } from "./command";
import { jobCommands } from "./job-commands";
import { taskCommands } from "./task-commands";
import { workflowCommands } from "./workflow-commands";
import { serverCommands } from "./server-commands";
import { controlCommands } from "./control-commands";
import { runDemo } from "./demo";
import { failUsage, refuseEmptyNumbers, runCli } from "./main";
import { migrationScript } from "../db/migrations";
import { SkeinSchema } from "../db/schema";

void runCli(async () => {
  refuseEmptyNumbers(hideBin(process.argv));
  await common(yargs(hideBin(process.argv)))
    .scriptName("skein")
    .usage("$0 <command> [options]\n\nCreates, inspects and steers Skein jobs.")
    .command(jobCommands)
    .command(taskCommands)
    .command(
      "sql",
      "Print Skein's migrations as one SQL script for its schema, to apply through your own migrations",
      (y) => y.options({ after: { type: "string", describe: "Only the migrations after this one (an upgrade: the last one your database has)" } }),
      (args) => {
        const config = buildConfig(args, process.env, false);
        process.stdout.write(migrationScript({ schema: SkeinSchema.of(config.schema), after: args.after }));
      },
    )
    .command(
      "demo",
      "Run the demo: a worker and a graph of jobs on the (embedded) database",
      (y) => y,
      async (args) => {
        const config = buildConfig(args, process.env, Boolean(process.stdout.isTTY));
        await runDemo(config, { json: args.json === true, tty: Boolean(process.stdout.isTTY) });
      },
    )
    .command(workflowCommands)
    .command(serverCommands)
    .command(controlCommands)
    .demandCommand(1, "name a command (see --help)")
    .strict()
    .fail(failUsage)
    .version(false)
    .help()
    .parseAsync();
});
