import type { Sql } from "../database";
import { sql, statement, T, variants } from "./template";

/**
 * Live streams read positions: `(xid, id)`, the transaction that wrote a row
 * and its row id. A read takes only rows below the horizon, the oldest
 * transaction still running (`pg_snapshot_xmin`): every transaction below it
 * has ended, so no row can appear behind a position once it was read. A
 * stream's events are therefore delivered once and in order, across
 * reconnects, however late their transactions commit. One transaction writes
 * either state changes or log lines, never both, so one position orders both.
 */

/** A position in a stream: `<xid>.<id>`. */
export interface Position {
  xid: string;
  id: string;
}

/** A state change of a job (stream_events). */
export interface StreamEventRow {
  xid: string;
  id: string;
  at: Date;
  job_id: string;
  tenant: string | null;
  name: string;
  status: string;
  attempt: number | null;
}

/** A log line with its position. */
export interface StreamLogRow {
  xid: string;
  id: string;
  job_id: string;
  attempt: number;
  at: Date;
  level: string;
  message: string;
  fields: Record<string, unknown> | null;
}

/** Which rows a stream reads: one tenant's (or all, for the admin), or one job's. */
export type StreamScope = { tenant: string | null } | { jobId: string };

type ReadParams = { cx: string; cid: string; limit: number; tenant: string | null; jobId: string };

/** One row of a read: an event, a log line, or the horizon (kind `h`, its xid alone). */
type ReadRow = { kind: "e" | "l" | "h"; xid: string; id: string; at: Date | null; job_id: string | null; tenant: string | null; name: string | null; status: string | null; attempt: number | null; level: string | null; message: string | null; fields: Record<string, unknown> | null };

/**
 * Both reads and the horizon in one statement, so they share one snapshot:
 * rows below the horizon that this snapshot cannot see do not exist.
 */
const readStatement = variants(
  (job: boolean) => (job ? "job" : "tenant"),
  (job) =>
    statement<ReadParams, ReadRow>((p) => {
      const logScope = job
        ? sql`l.job_id = ${p.jobId}`
        : sql`(${p.tenant}::text IS NULL
             OR EXISTS (SELECT 1 FROM ${T.jobs} j WHERE j.id = l.job_id AND j.tenant = ${p.tenant})
             OR EXISTS (SELECT 1 FROM ${T.job_history} hj WHERE hj.job_id = l.job_id AND hj.tenant = ${p.tenant}))`;
      return sql`WITH h AS MATERIALIZED (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS horizon),
     ev AS (
       SELECT e.* FROM ${T.stream_events} e, h
       WHERE e.xid < h.horizon AND (e.xid, e.id) > (${p.cx}::xid8, ${p.cid}::bigint)
         AND ${job ? sql`e.job_id = ${p.jobId}` : sql`(${p.tenant}::text IS NULL OR e.tenant = ${p.tenant})`}
       ORDER BY e.xid, e.id LIMIT ${p.limit}
     ), lg AS (
       SELECT l.* FROM ${T.job_logs} l, h
       WHERE l.xid < h.horizon AND (l.xid, l.id) > (${p.cx}::xid8, ${p.cid}::bigint) AND ${logScope}
       ORDER BY l.xid, l.id LIMIT ${p.limit}
     )
     SELECT 'e' AS kind, xid::text AS xid, id::text AS id, at, job_id, tenant, name, status, attempt,
       NULL::text AS level, NULL::text AS message, NULL::jsonb AS fields FROM ev
     UNION ALL
     SELECT 'l', xid::text, id::text, at, job_id, NULL, NULL, NULL, attempt, level, message, fields FROM lg
     UNION ALL
     SELECT 'h', horizon::text, '0', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL FROM h`;
    }),
);

const horizonStatement = statement<Record<string, never>, { xid: string }>(() => sql`SELECT pg_snapshot_xmin(pg_current_snapshot())::text AS xid`);

/** The horizon now: a stream that starts "from now" starts here. */
export async function streamHorizon(db: Sql): Promise<Position> {
  const row = await horizonStatement.one(db, {});
  return { xid: (row as { xid: string }).xid, id: "0" };
}

/** What one read of a stream found. */
export interface StreamRead {
  items: Array<{ kind: "event"; row: StreamEventRow } | { kind: "log"; row: StreamLogRow }>;
  /** Where the next read starts: after the last item, or at the horizon when everything below it was read. */
  next: Position;
}

/** The events and log lines of a scope after `after`, in position order, at most `limit` of each kind per read. */
export async function readStream(db: Sql, scope: StreamScope, after: Position, limit: number): Promise<StreamRead> {
  const job = "jobId" in scope;
  const rows = await readStatement(job).all(db, { cx: after.xid, cid: after.id, limit, tenant: job ? null : scope.tenant, jobId: job ? scope.jobId : "" });
  const events = rows.filter((r) => r.kind === "e") as unknown as StreamEventRow[];
  const logs = rows.filter((r) => r.kind === "l") as unknown as StreamLogRow[];
  const horizon = rows.find((r) => r.kind === "h") as ReadRow;
  return merge(events, logs, limit, { xid: horizon.xid, id: "0" }, after);
}

/** Both kinds in position order; the next position is the horizon when neither read was cut short by its limit. */
function merge(events: StreamEventRow[], logs: StreamLogRow[], limit: number, horizon: Position, after: Position): StreamRead {
  const items: StreamRead["items"] = [...events.map((row) => ({ kind: "event" as const, row })), ...logs.map((row) => ({ kind: "log" as const, row }))];
  items.sort((a, b) => comparePositions(a.row, b.row));
  const full = events.length === limit || logs.length === limit;
  if (full) {
    // Only up to the first position either cut-short read may not have reached.
    const bound = [events.length === limit ? events[events.length - 1] : undefined, logs.length === limit ? logs[logs.length - 1] : undefined]
      .filter((r): r is StreamEventRow | StreamLogRow => r !== undefined)
      .sort(comparePositions)[0];
    const kept = items.filter((i) => comparePositions(i.row, bound) <= 0);
    const last = kept[kept.length - 1]?.row;
    return { items: kept, next: last ? { xid: last.xid, id: last.id } : after };
  }
  return { items, next: comparePositions(horizon, after) > 0 ? horizon : after };
}

/** Orders positions: by transaction id, then row id (both as decimal strings of unbounded size). */
export function comparePositions(a: Position, b: Position): number {
  return compareDecimal(a.xid, b.xid) || compareDecimal(a.id, b.id);
}

function compareDecimal(a: string, b: string): number {
  return a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);
}
