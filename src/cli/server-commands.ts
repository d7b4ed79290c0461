import type { CommandModule } from "yargs";
import { createLogger } from "../core/logger";
import { createServer, createTenantToken, listTenantTokens, revokeTenantToken } from "../server";
import { common, print, withDatabase, type Flags } from "./command";
import { buildConfig, UsageError } from "./config";
import { openDatabase } from "./database";
import { table } from "./format";
import { numberFlag } from "./main";

/** `skein serve` and `skein tokens`. */

const serve: CommandModule<Flags, Flags & { port: number; host: string }> = {
  command: "serve",
  describe: "Serve the HTTP API, event streams, /metrics and the dashboard (admin token: SKEIN_ADMIN_TOKEN)",
  builder: (y) =>
    common(y).options({
      port: { type: "number", default: 8080, describe: "Port to listen on" },
      host: { type: "string", default: "127.0.0.1", describe: "Address to listen on" },
    }) as never,
  handler: async (args) => {
    const config = buildConfig(args, process.env, Boolean(process.stderr.isTTY));
    const logger = createLogger({ level: config.logLevel, format: config.logFormat });
    const port = numberFlag("port", args.port, { integer: true, min: 0 }) as number;
    if (port > 65535) throw new UsageError(`invalid --port ${port}: at most 65535`);
    const db = await openDatabase(config, logger, { migrate: true, maxConnections: 10 });
    const app = await createServer({ prisma: db.prisma, adminToken: config.adminToken, logger });
    const address = await app.listen({ port, host: args.host });
    logger.info(`Skein API and dashboard on ${address}${config.adminToken ? "" : " (no SKEIN_ADMIN_TOKEN: only tenant tokens work)"}`);
    await new Promise<void>((resolve) => {
      const stop = () => resolve();
      process.once("SIGINT", stop);
      process.once("SIGTERM", stop);
    });
    await app.close();
    await db.close();
  },
};

const tokens: CommandModule<Flags, Flags> = {
  command: "tokens <command>",
  describe: "Tenant API tokens (create, list, revoke); stored only as hashes",
  builder: (y) =>
    y
      .command({
        command: "create",
        describe: "Create a token for a tenant; its secret is printed once",
        builder: (z) => common(z).options({ tenant: { type: "string", demandOption: true }, name: { type: "string" } }),
        handler: async (args) => {
          await withDatabase(args, async ({ prisma }) => {
            const created = await createTenantToken(prisma, args.tenant, args.name);
            print(args, created, `${created.token}\n(token ${created.id} for tenant ${created.tenant}; keep it: it is not shown again)`);
          });
        },
      })
      .command({
        command: "list",
        describe: "List tokens (without secrets)",
        builder: (z) => common(z),
        handler: async (args) => {
          await withDatabase(args, async ({ prisma }) => {
            const list = await listTenantTokens(prisma);
            print(args, list, table(["id", "tenant", "name", "created", "revoked"], list.map((t) => [t.id, t.tenant, t.name ?? "-", t.createdAt.toISOString(), t.revokedAt?.toISOString() ?? "-"])));
          });
        },
      })
      .command({
        command: "revoke <id>",
        describe: "Revoke a token",
        builder: (z) => common(z).positional("id", { type: "string", demandOption: true }),
        handler: async (args) => {
          await withDatabase(args, async ({ prisma }) => {
            if (!(await revokeTenantToken(prisma, String(args.id)))) throw new UsageError(`no active token ${JSON.stringify(args.id)}`);
            print(args, { revoked: args.id }, `revoked token ${args.id}`);
          });
        },
      })
      .demandCommand(1, "name a tokens command: create, list or revoke") as never,
  handler: () => undefined,
};

/** The server commands, for `yargs.command([...])`. */
export const serverCommands = [serve, tokens] as unknown as CommandModule[];

