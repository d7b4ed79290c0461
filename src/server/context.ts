import type { FastifyRequest } from "fastify";
import type { Database } from "../db/database";
import type { PrismaClient } from "../db/client";
import { graphAround } from "../db/sql/graph";
import type { JobManager } from "../jobs/JobManager";
import type { Principal } from "./auth";

/** What the routes share. */
export interface ServerContext {
  jobManager: JobManager;
  /** Skein's own client: the typed model API for administration (tokens). */
  prisma: PrismaClient;
  db: Database;
  /** The caller's tenant, or null for the admin (who sees every tenant). */
  tenantOf(request: FastifyRequest): string | null;
  /** The graph around a job, for the dashboard. */
  graphAround(id: string, tenant: string | null): ReturnType<typeof graphAround>;
}

/** The principal the auth hook attached to a request. */
export function principalOf(request: FastifyRequest): Principal {
  const principal = (request as FastifyRequest & { principal?: Principal }).principal;
  if (!principal) throw new Error("route reached without authentication");
  return principal;
}

/** Builds the context. */
export function serverContext(jobManager: JobManager, db: Database, prisma: PrismaClient): ServerContext {
  return {
    jobManager,
    prisma,
    db,
    tenantOf: (request) => {
      const p = principalOf(request);
      return p.kind === "admin" ? null : p.tenant;
    },
    graphAround: (id, tenant) => graphAround(db, id, tenant, 300),
  };
}
