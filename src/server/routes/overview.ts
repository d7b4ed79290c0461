import { overview, throughput } from "../../db/sql/server";
import { principalOf, tenantOf } from "../access";
import { createStreamTicket } from "../auth";
import type { ServerContext, TypedApp } from "../context";
import { ThroughputQuery } from "../schemas";

const anyToken = { config: { access: "tenant" as const } };

/** Overview, throughput, who am I, and stream tickets: any token, scoped to its tenant. */
export function overviewRoutes(app: TypedApp, ctx: ServerContext): void {
  app.get("/api/overview", { ...anyToken, schema: { tags: ["overview"], summary: "Counts by status and recent throughput (the caller's tenant, or all)" } }, async (request) => {
    const tenant = tenantOf(request);
    return { tenant, ...(await overview(ctx.db, tenant)) };
  });
  app.get("/api/throughput", { ...anyToken, schema: { tags: ["overview"], summary: "Jobs completed and failed per minute over the last `minutes`", querystring: ThroughputQuery } }, async (request) =>
    throughput(ctx.db, tenantOf(request), request.query.minutes),
  );
  app.get("/api/me", { ...anyToken, schema: { tags: ["overview"], summary: "Who the token belongs to" } }, async (request) => {
    const p = principalOf(request);
    return p.kind === "admin" ? { role: "admin" } : { role: "tenant", tenant: p.tenant };
  });
  app.post(
    "/api/stream-tickets",
    { ...anyToken, schema: { tags: ["streams"], summary: "A ticket that opens event streams for 60 seconds (?ticket=), so the token never goes in a URL" } },
    async (request, reply) => {
      reply.status(201);
      return createStreamTicket(ctx.prisma, principalOf(request));
    },
  );
}
