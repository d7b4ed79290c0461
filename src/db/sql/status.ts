import type { Sql } from "../database";
import { sql, statement, T } from "./template";

/** A snapshot of the system for `run-worker --status`. */
export interface StatusSnapshot {
  generatedAt: Date;
  workers: Array<{ id: string; host: string; pid: number; concurrency: number; status: string; tenants: string[] | null; startedAt: Date; lastHeartbeatAt: Date; heartbeatAgeSeconds: number }>;
  /** Queues whose jobs no worker claims until they are resumed. */
  pausedQueues: string[];
  counts: Record<"pending" | "running" | "completed" | "failed" | "cancelled", number>;
  pending: { ready: number; blockedOnDependencies: number; scheduled: number };
  running: Array<{ id: string; name: string; workerId: string | null; startedAt: Date | null; ageSeconds: number; leaseExpiresAt: Date | null }>;
  waiting: Array<{ id: string; name: string; reason: string }>;
  lastFailures: Array<{ id: string; name: string; errorMessage: string | null; completedAt: Date; attempts: number }>;
}

type None = Record<string, never>;
const workersStatement = statement<None, StatusSnapshot["workers"][number]>(
  () => sql`SELECT id, host, pid, concurrency, status, tenants, started_at AS "startedAt", last_heartbeat_at AS "lastHeartbeatAt",
         EXTRACT(EPOCH FROM now() - last_heartbeat_at)::float8 AS "heartbeatAgeSeconds"
       FROM ${T.workers} ORDER BY started_at`,
);
const liveStatement = statement<None, { status: string; n: number }>(() => sql`SELECT status, count(*)::int AS n FROM ${T.jobs} GROUP BY status`);
const historyStatement = statement<None, { status: string; n: number }>(() => sql`SELECT status, count(*)::int AS n FROM ${T.job_history} GROUP BY status`);
const pendingStatement = statement<None, StatusSnapshot["pending"]>(
  () => sql`SELECT count(*) FILTER (WHERE pending_dependencies = 0 AND run_at <= now())::int AS ready,
              count(*) FILTER (WHERE pending_dependencies > 0)::int AS "blockedOnDependencies",
              count(*) FILTER (WHERE pending_dependencies = 0 AND run_at > now())::int AS scheduled
       FROM ${T.jobs} WHERE status = 'pending'`,
);
const runningStatement = statement<None, StatusSnapshot["running"][number]>(
  () => sql`SELECT id, name, locked_by AS "workerId", started_at AS "startedAt", lease_expires_at AS "leaseExpiresAt",
         EXTRACT(EPOCH FROM now() - started_at)::float8 AS "ageSeconds"
       FROM ${T.jobs} WHERE status = 'running' ORDER BY started_at LIMIT 20`,
);
const waitingStatement = statement<None, StatusSnapshot["waiting"][number]>(
  () => sql`SELECT j.id, j.name,
         CASE
           WHEN EXISTS (SELECT 1 FROM ${T.job_dependencies} e JOIN ${T.jobs} c ON c.id = e.depends_on_id WHERE e.job_id = j.id AND e.on_failure = 'wait') THEN
             'parked until its delegated jobs end: ' ||
             (SELECT string_agg(d.depends_on_id, ', ' ORDER BY d.depends_on_id) FROM (
                SELECT e.depends_on_id FROM ${T.job_dependencies} e JOIN ${T.jobs} c ON c.id = e.depends_on_id
                WHERE e.job_id = j.id AND e.on_failure = 'wait' ORDER BY e.depends_on_id LIMIT 3) d)
             || CASE WHEN j.wait_until IS NOT NULL THEN ' (cancelled at ' || to_char(j.wait_until AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') || ')' ELSE '' END
           WHEN j.pending_dependencies > 0 THEN
             'waiting on ' || j.pending_dependencies || ' dependenc' || CASE WHEN j.pending_dependencies = 1 THEN 'y' ELSE 'ies' END || ': ' ||
             (SELECT string_agg(d.depends_on_id, ', ' ORDER BY d.depends_on_id) FROM (
                SELECT e.depends_on_id FROM ${T.job_dependencies} e JOIN ${T.jobs} p ON p.id = e.depends_on_id
                WHERE e.job_id = j.id ORDER BY e.depends_on_id LIMIT 3) d)
             || CASE WHEN j.pending_dependencies > 3 THEN ', ...' ELSE '' END
           WHEN j.run_at > now() AND EXISTS (SELECT 1 FROM ${T.job_steps} st WHERE st.job_id = j.id AND st.wake_at = j.run_at) THEN
             'sleeping (ctx.sleep) until ' || to_char(j.run_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
           WHEN j.run_at > now() THEN 'runAt in the future (' || to_char(j.run_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') || ')'
           ELSE 'ready, waiting for a free worker slot'
         END AS reason
       FROM ${T.jobs} j WHERE j.status = 'pending'
       ORDER BY j.pending_dependencies = 0 AND j.run_at <= now() DESC, j.priority DESC, j.run_at, j.id
       LIMIT 10`,
);
const failuresStatement = statement<None, StatusSnapshot["lastFailures"][number]>(
  () => sql`SELECT job_id AS id, name, error_message AS "errorMessage", completed_at AS "completedAt", attempts
       FROM ${T.job_history} WHERE status = 'failed' ORDER BY completed_at DESC LIMIT 5`,
);
const nowStatement = statement<None, { now: Date }>(() => sql`SELECT now() AS now`);
const pausedStatement = statement<None, { name: string }>(() => sql`SELECT name FROM ${T.paused_queues} ORDER BY name`);

/** Reads the status snapshot (a handful of indexed queries). */
export async function readStatus(db: Sql): Promise<StatusSnapshot> {
  const none: None = {};
  const [workers, live, history, pending, running, waiting, failures, now, paused] = await Promise.all([
    workersStatement.all(db, none),
    liveStatement.all(db, none),
    historyStatement.all(db, none),
    pendingStatement.all(db, none),
    runningStatement.all(db, none),
    waitingStatement.all(db, none),
    failuresStatement.all(db, none),
    nowStatement.all(db, none),
    pausedStatement.all(db, none),
  ]);
  const counts = { pending: 0, running: 0, completed: 0, failed: 0, cancelled: 0 };
  for (const row of [...live, ...history]) counts[row.status as keyof typeof counts] += row.n;
  return {
    generatedAt: now[0].now,
    workers,
    pausedQueues: paused.map((p) => p.name),
    counts,
    pending: pending[0] ?? { ready: 0, blockedOnDependencies: 0, scheduled: 0 },
    running,
    waiting,
    lastFailures: failures,
  };
}
