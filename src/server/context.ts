import type { FastifyInstance, FastifyRequest } from "fastify";
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import type { Logger } from "../core/logger";
import type { PrismaClient } from "../db/client";
import type { Database } from "../db/database";
import type { JobManager } from "../jobs/JobManager";
import { tenantOf } from "./access";
import { TenantIds } from "./tenancy";

/** What the routes share. */
export interface ServerContext {
  jobManager: JobManager;
  db: Database;
  /** Skein's own client: the typed model API for administration (tokens, tickets). */
  prisma: PrismaClient;
  logger: Logger;
}

/** A Fastify instance typed by TypeBox schemas. */
export function typed(app: FastifyInstance) {
  return app.withTypeProvider<TypeBoxTypeProvider>();
}
/** The typed instance routes are declared on. */
export type TypedApp = ReturnType<typeof typed>;

/** The caller's view of ids (a tenant's own namespace; the admin's is the stored one). */
export function idsOf(request: FastifyRequest): TenantIds {
  return new TenantIds(tenantOf(request));
}
