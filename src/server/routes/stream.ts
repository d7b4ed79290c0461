import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { lastLogId, tenantLogsAfter } from "../../db/sql/logs";
import { changedSince, tenantOf } from "../../db/sql/server";
import type { ServerContext } from "../context";
import { HttpError } from "../errors";
import { idParams } from "../schemas";

/** How often a stream looks for news. */
const POLL_MS = 400;

/**
 * Opens a Server-Sent Events response and calls `poll` until the client goes
 * away. `poll` returns the messages to send, each with the id a reconnecting
 * client sends back as Last-Event-ID.
 */
function openStream(request: FastifyRequest, reply: FastifyReply, poll: () => Promise<Array<{ id: string; event: string; data: unknown }>>): void {
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache, no-transform", connection: "keep-alive", "x-accel-buffering": "no" });
  res.write("retry: 2000\n\n");
  let open = true;
  let timer: NodeJS.Timeout | undefined;
  request.raw.on("close", () => {
    open = false;
    clearTimeout(timer);
  });
  const tick = async () => {
    if (!open) return;
    try {
      for (const m of await poll()) res.write(`id: ${m.id}\nevent: ${m.event}\ndata: ${JSON.stringify(m.data)}\n\n`);
      res.write(": keep-alive\n\n");
    } catch {
      // The database may be restarting: try again on the next tick.
    }
    if (open) timer = setTimeout(() => void tick(), POLL_MS);
  };
  void tick();
}

/** `GET /api/jobs/:id/stream` (a job's state changes and log lines) and `GET /api/stream` (a tenant's). */
export async function streamRoutes(app: FastifyInstance, ctx: ServerContext): Promise<void> {
  const lastEventId = (request: FastifyRequest) => {
    const header = request.headers["last-event-id"];
    return typeof header === "string" ? header : undefined;
  };

  app.get("/api/jobs/:id/stream", { schema: { tags: ["streams"], summary: "Server-Sent Events: a job's state changes and log lines; resumes with Last-Event-ID", params: idParams } }, async (request, reply) => {
    const { id } = request.params as { id: string };
    const tenant = ctx.tenantOf(request);
    const owner = await tenantOf(ctx.db, id);
    if (owner === undefined || (tenant !== null && owner !== tenant)) throw new HttpError(404, `job ${JSON.stringify(id)} not found`);
    // Cursor: "<state changes sent>.<last log line id>".
    const [sentText, logText] = (lastEventId(request) ?? "0.0").split(".");
    let sent = /^\d+$/.test(sentText ?? "") ? Number(sentText) : 0;
    let lastLog = /^\d+$/.test(logText ?? "") ? (logText as string) : "0";
    openStream(request, reply, async () => {
      const out: Array<{ id: string; event: string; data: unknown }> = [];
      const timeline = (await ctx.jobManager.getJobEvents(id)) ?? [];
      for (const e of timeline.slice(sent)) {
        sent++;
        out.push({ id: `${sent}.${lastLog}`, event: "state", data: e });
      }
      for (const line of await ctx.jobManager.getJobLogs(id, { after: lastLog === "0" ? undefined : lastLog, limit: 500 })) {
        lastLog = line.id;
        out.push({ id: `${sent}.${lastLog}`, event: "log", data: line });
      }
      return out;
    });
  });

  app.get("/api/stream", { schema: { tags: ["streams"], summary: "Server-Sent Events: state changes and log lines of the caller's tenant (all for the admin); resumes with Last-Event-ID" } }, async (request, reply) => {
    const tenant = ctx.tenantOf(request);
    // Cursor: "<time of the last change, ms>.<last log line id>".
    const [atText, logText] = (lastEventId(request) ?? "").split(".");
    let after = /^\d+$/.test(atText ?? "") ? new Date(Number(atText)) : new Date();
    let lastLog = /^\d+$/.test(logText ?? "") ? (logText as string) : await lastLogId(ctx.db);
    const seenAtCursor = new Set<string>();
    openStream(request, reply, async () => {
      const out: Array<{ id: string; event: string; data: unknown }> = [];
      // Changes at exactly the cursor's millisecond may come in two polls: remember the ids sent for it.
      for (const change of await changedSince(ctx.db, tenant, new Date(after.getTime() - 1), 500)) {
        const key = `${change.id}:${change.status}:${change.at.getTime()}`;
        if (seenAtCursor.has(key)) continue;
        if (change.at.getTime() > after.getTime()) seenAtCursor.clear();
        seenAtCursor.add(key);
        after = change.at;
        out.push({ id: `${after.getTime()}.${lastLog}`, event: "job", data: change });
      }
      for (const line of await tenantLogsAfter(ctx.db, tenant, lastLog, 500)) {
        lastLog = line.id;
        out.push({ id: `${after.getTime()}.${lastLog}`, event: "log", data: { id: line.id, jobId: line.job_id, attempt: line.attempt, at: line.at, level: line.level, message: line.message, fields: line.fields } });
      }
      return out;
    });
  });
}
