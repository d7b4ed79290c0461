import type { FastifyReply, FastifyRequest } from "fastify";
import { readStream, streamHorizon, type Position, type StreamRead, type StreamScope } from "../../db/sql/stream";
import { idsOf, type ServerContext, type TypedApp } from "../context";
import { IdParams, StreamQuery } from "../schemas";
import type { TenantIds } from "../tenancy";
import { visibleJob } from "./jobs";

/** How often a stream looks for news. */
const POLL_MS = 250;
const POSITION = /^(\d{1,20})\.(\d{1,20})$/;

/** Where a reconnecting client resumes: Last-Event-ID (header, or `?lastEventId=`), if it is a position. */
function resumeAt(request: FastifyRequest, query: { lastEventId?: string }): Position | undefined {
  const header = request.headers["last-event-id"];
  const match = POSITION.exec(typeof header === "string" ? header : (query.lastEventId ?? ""));
  return match ? { xid: match[1], id: match[2] } : undefined;
}

/**
 * Answers with Server-Sent Events: every state change and log line of
 * `scope` after `from`, each once and in position order (see
 * db/sql/stream.ts), each with its position as the event id.
 */
function openStream(ctx: ServerContext, request: FastifyRequest, reply: FastifyReply, scope: StreamScope, from: Position, ids: TenantIds): void {
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache, no-transform", connection: "keep-alive", "x-accel-buffering": "no" });
  res.write("retry: 2000\n\n");
  let open = true;
  let position = from;
  let timer: NodeJS.Timeout | undefined;
  request.raw.on("close", () => {
    open = false;
    clearTimeout(timer);
  });
  const tick = async () => {
    if (!open) return;
    try {
      const read = await readStream(ctx.db, scope, position, 500);
      for (const message of messages(read, ids)) res.write(`id: ${message.id}\nevent: ${message.event}\ndata: ${JSON.stringify(message.data)}\n\n`);
      position = read.next;
      res.write(": keep-alive\n\n");
    } catch (error) {
      // The database may be restarting: the next tick reads from the same position.
      ctx.logger.debug("stream read failed", { error: String(error) });
    }
    if (open) timer = setTimeout(() => void tick(), POLL_MS);
  };
  void tick();
}

function messages(read: StreamRead, ids: TenantIds): Array<{ id: string; event: string; data: unknown }> {
  return read.items.map((item) => {
    const id = `${item.row.xid}.${item.row.id}`;
    if (item.kind === "event") {
      const e = item.row;
      return { id, event: "job", data: { id: ids.outward(e.job_id), name: e.name, status: e.status, attempt: e.attempt, at: e.at } };
    }
    const l = item.row;
    return { id, event: "log", data: { id: l.id, jobId: ids.outward(l.job_id), attempt: l.attempt, at: l.at, level: l.level, message: l.message, fields: l.fields } };
  });
}

/** `GET /api/jobs/:id/stream` (a job's state changes and log lines, from its start) and `GET /api/stream` (a tenant's, from now). */
export function streamRoutes(app: TypedApp, ctx: ServerContext): void {
  const route = { config: { access: "tenant" as const, stream: true } };
  app.get(
    "/api/jobs/:id/stream",
    { ...route, schema: { tags: ["streams"], summary: "Server-Sent Events: a job's state changes and log lines, each once and in order; resumes after Last-Event-ID", params: IdParams, querystring: StreamQuery } },
    async (request, reply) => {
      const job = await visibleJob(ctx, request, request.params.id);
      openStream(ctx, request, reply, { jobId: job.id }, resumeAt(request, request.query) ?? { xid: "0", id: "0" }, idsOf(request));
    },
  );
  app.get(
    "/api/stream",
    { ...route, schema: { tags: ["streams"], summary: "Server-Sent Events: state changes and log lines of the caller's tenant (all for the admin), each once and in order; resumes after Last-Event-ID", querystring: StreamQuery } },
    async (request, reply) => {
      const ids = idsOf(request);
      openStream(ctx, request, reply, { tenant: ids.tenant }, resumeAt(request, request.query) ?? (await streamHorizon(ctx.db)), ids);
    },
  );
}
