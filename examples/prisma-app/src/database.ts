import { PrismaPg } from "@prisma/adapter-pg";
import { startEmbeddedDatabase } from "skein";
import { PrismaClient } from "./generated/prisma/client.ts";

/**
 * The application's database: DATABASE_URL, or (to try the example on a fresh
 * machine) Skein's embedded PostgreSQL in ./.skein, shared by every command.
 */
export async function databaseUrl(): Promise<{ url: string; stop(): Promise<void> }> {
  if (process.env.DATABASE_URL) return { url: process.env.DATABASE_URL, stop: async () => undefined };
  const embedded = await startEmbeddedDatabase({ dataDir: ".skein", databaseName: "app" });
  return { url: embedded.url, stop: () => embedded.stop() };
}

/** The application's own Prisma client: its models, its connection pool. */
export function applicationClient(url: string): PrismaClient {
  return new PrismaClient({ adapter: new PrismaPg({ connectionString: url }) });
}

/** Skein's schema in this database (anything but "public"). */
export const SKEIN_SCHEMA = "skein";
