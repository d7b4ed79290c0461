import type { FastifyInstance, FastifyRequest, RouteOptions } from "fastify";
import type { PrismaClient } from "../db/client";
import { authenticate, authenticateTicket, type Principal } from "./auth";
import { HttpError } from "./errors";

/**
 * Who may call a route: `public` (anyone; health checks and the dashboard's
 * files), `tenant` (any valid token: a tenant sees only its own jobs, the
 * admin sees all), `admin` (the admin token only). Every route declares one
 * (`config: { access }`); a route without it stops the server from starting.
 */
export type Access = "public" | "tenant" | "admin";

/** A route's declaration beyond Fastify's: its access rule, and whether a stream ticket may stand in for the bearer token. */
export interface RouteAccess {
  access: Access;
  /** An event stream: `?ticket=` (from `POST /api/stream-tickets`) is accepted instead of the header. */
  stream?: boolean;
}

declare module "fastify" {
  interface FastifyContextConfig {
    access?: Access;
    stream?: boolean;
  }
  interface FastifyRequest {
    principal?: Principal;
  }
}

const ACCESS: readonly Access[] = ["public", "tenant", "admin"];
const DESCRIPTIONS: Record<Access, string> = {
  public: "Access: public (no token).",
  tenant: "Access: any token; a tenant token sees and changes only its tenant's jobs.",
  admin: "Access: the admin token only (a tenant token gets 403).",
};

/**
 * Makes access a property of each route, decided on the route the router
 * matched (never on the raw request target, so `/%61pi/...` or an
 * absolute-form target cannot reach a handler without a token): refuses to
 * register a route that declares none, writes the rule into the route's
 * OpenAPI description and security, and checks every request against it.
 */
export function enforceAccess(app: FastifyInstance, prisma: PrismaClient, adminToken: string | undefined): void {
  app.addHook("onRoute", (route: RouteOptions) => {
    const access = route.config?.access;
    if (access === undefined || !ACCESS.includes(access)) {
      throw new Error(`route ${String(route.method)} ${route.url} declares no access rule (config: { access: "public" | "tenant" | "admin" })`);
    }
    if (route.schema && !route.schema.hide) {
      const schema = route.schema as Record<string, unknown>;
      const described = typeof schema.description === "string" ? schema.description : "";
      // A GET's schema object is shared with its HEAD route, so this runs twice on it.
      if (!described.startsWith(DESCRIPTIONS[access])) schema.description = [DESCRIPTIONS[access], described].filter(Boolean).join(" ");
      if (access === "public") schema.security = [];
    }
  });
  app.addHook("onRequest", async (request) => {
    const config = request.routeOptions.config;
    // No route matched: the 404 handler answers, with no data.
    if (request.routeOptions.url === undefined || config.access === undefined || config.access === "public") return;
    const principal = await principalFor(request, prisma, adminToken, config.stream === true);
    if (!principal) throw new HttpError(401, "a valid bearer token is needed (the admin token or a tenant token)");
    if (config.access === "admin" && principal.kind !== "admin") throw new HttpError(403, "this needs the admin token");
    request.principal = principal;
  });
}

async function principalFor(request: FastifyRequest, prisma: PrismaClient, adminToken: string | undefined, stream: boolean): Promise<Principal | undefined> {
  const header = request.headers.authorization;
  if (typeof header === "string" && header.startsWith("Bearer ")) return authenticate(prisma, header.slice(7).trim(), adminToken);
  const ticket = stream ? ticketOf(request.url) : undefined;
  return ticket === undefined ? undefined : authenticateTicket(prisma, ticket);
}

/** The `ticket` query parameter of a raw URL (read before validation: the value is checked by its format). */
function ticketOf(url: string): string | undefined {
  const query = url.indexOf("?");
  if (query < 0) return undefined;
  try {
    return new URLSearchParams(url.slice(query + 1)).get("ticket") ?? undefined;
  } catch {
    return undefined;
  }
}

/** The principal the access check attached (routes of `tenant` or `admin` access always have one). */
export function principalOf(request: FastifyRequest): Principal {
  const principal = request.principal;
  if (!principal) throw new HttpError(401, "a valid bearer token is needed");
  return principal;
}

/** The caller's tenant, or null for the admin (who sees every tenant). */
export function tenantOf(request: FastifyRequest): string | null {
  const p = principalOf(request);
  return p.kind === "admin" ? null : p.tenant;
}
