import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import type pg from "pg";
import { dependencyId } from "./graph";

/**
 * The invariant checker. After a scenario it reads the database (job_history,
 * jobs) and the per-attempt execution log that the chaos agents wrote (see
 * fixtures/chaos-agents.js) and reports every violation of Skein's guarantees:
 *
 *  lost          a created job did not end completed, failed or cancelled
 *  status        a job ended otherwise than its graph dictates (doomed -> failed, downstream -> cancelled, else completed)
 *  twice         one claim ran twice, or a job ran again after it finished
 *  lease         a job was claimed again while an earlier attempt still held its lease, or a
 *                write carrying a lease token was accepted after the job had been claimed again
 *  result        the recorded result is not the one of the attempt that held the lease
 *  early         a job started before all its dependencies completed, or ran although one failed
 *  dependencies  pending_dependencies disagreed with the edges (sampled during the run by DependencyAuditor)
 *
 * Times compared across processes all come from the same machine clock.
 * Every lease check is one-sided (it can only fire when the order of events
 * proves the overlap), so a slow machine cannot produce a false alarm.
 */

export interface LogEvent {
  e: string;
  w: string;
  p: number;
  // claim
  b?: number;
  a?: number;
  s?: number;
  jobs?: Array<[string, number, string]>;
  // start/end
  j?: string;
  n?: number;
  l?: string | null;
  t?: number;
  dn?: number;
  ok?: boolean;
  // complete / fail / renew / release / rescue
  sent?: Array<[string, string]> | number;
  acc?: string[];
  out?: "retried" | "failed" | "refused";
  held?: string[];
  ids?: string[];
  retried?: number;
  failed?: number;
  err?: string;
}

/** Reads every *.jsonl file in the log folder (a line cut short by kill -9 is skipped). */
export function readEvents(logDir: string): LogEvent[] {
  const events: LogEvent[] = [];
  for (const file of readdirSync(logDir).filter((f) => f.endsWith(".jsonl"))) {
    for (const line of readFileSync(path.join(logDir, file), "utf8").split("\n")) {
      if (line.trim() === "") continue;
      try {
        events.push(JSON.parse(line) as LogEvent);
      } catch {
        // a torn last line of a killed process
      }
    }
  }
  return events;
}

interface HistoryRow {
  job_id: string;
  status: "completed" | "failed" | "cancelled";
  attempts: number;
  retry_count: number;
  result: { w?: string; n?: number; l?: string | null } | null;
  locked_by: string | null;
  /** As given at creation: ids (or dependency specs with an id). */
  dependencies: unknown[];
  payload: { parameters?: { doom?: boolean }; query?: { doom?: boolean } };
  error_message: string | null;
  completed_ms: number;
}

export interface CheckFigures {
  jobs: number;
  completed: number;
  failed: number;
  cancelled: number;
  claims: number;
  attempts: number;
  /** Attempts that ran while a later attempt of the same job ran elsewhere (zombies whose lease had expired). */
  zombieOverlaps: number;
  completionsAccepted: number;
  writesRefused: number;
  leasesRescued: number;
  retriesAfterFailure: number;
  workerProcesses: number;
}

export interface CheckResult {
  violations: string[];
  figures: CheckFigures;
}

const TOLERANCE_MS = 2; // Date.now() is whole milliseconds; PostgreSQL's clock has microseconds

export async function checkInvariants(
  pool: pg.Pool,
  logDir: string,
  created: Iterable<string>,
  options: { expectStatuses?: boolean; extraViolations?: string[] } = {},
): Promise<CheckResult> {
  const violations: string[] = [...(options.extraViolations ?? [])];
  const flag = (kind: string, message: string) => violations.push(`${kind}: ${message}`);

  const { rows: rawHistory } = await pool.query<HistoryRow>(
    `SELECT job_id, status, attempts, retry_count, result, locked_by, dependencies, payload, error_message,
            (EXTRACT(EPOCH FROM completed_at) * 1000)::float8 AS completed_ms
       FROM job_history`,
  );
  const { rows: live } = await pool.query<{ id: string; status: string; pending_dependencies: number }>(
    "SELECT id, status, pending_dependencies FROM jobs",
  );
  const history = rawHistory.map((h) => ({ ...h, dependencies: (h.dependencies ?? []).map(dependencyId) }));
  const hist = new Map(history.map((h) => [h.job_id, h]));

  // lost: every created job finished, exactly once.
  const createdIds = new Set(created);
  for (const job of live) flag("lost", `job ${JSON.stringify(job.id)} never finished (still ${job.status}, waiting on ${job.pending_dependencies})`);
  for (const id of createdIds) if (!hist.has(id) && !live.some((l) => l.id === id)) flag("lost", `job ${JSON.stringify(id)} was created but is neither live nor in history`);

  const events = readEvents(logDir);
  const claims = new Map<string, Array<{ b: number; a: number; s: number; w: string; token: string }>>(); // by job#attempt
  const claimsByJob = new Map<string, number[]>();
  const starts = new Map<string, LogEvent[]>(); // by job#attempt
  const startsByJob = new Map<string, LogEvent[]>();
  const ends = new Map<string, LogEvent>();
  const renewedAt = new Map<string, number>(); // token -> latest renewal's "before" time
  const acceptedWrites = new Map<string, Array<{ kind: string; b: number; job: string }>>(); // by token
  // token -> when its holder first sent a write that gives the job back (failure, release): the
  // lease may have ended from then on. Logged before sending, so a kill after the commit is covered.
  const leaseEndedByHolder = new Map<string, number>();
  const holderMayEnd = (token: string, b: number) => leaseEndedByHolder.set(token, Math.min(leaseEndedByHolder.get(token) ?? Infinity, b));
  const completionsAccepted = new Map<string, string[]>(); // job -> tokens
  const failedFinally = new Set<string>();
  let writesRefused = 0;
  let leasesRescued = 0;
  let retriesAfterFailure = 0;
  const processes = new Set<string>();
  const addAccepted = (token: string, kind: string, b: number, job: string) => {
    const list = acceptedWrites.get(token) ?? [];
    list.push({ kind, b, job });
    acceptedWrites.set(token, list);
  };

  for (const ev of events) {
    processes.add(`${ev.w}/${ev.p}`);
    switch (ev.e) {
      case "claim":
        for (const [id, n, token] of ev.jobs ?? []) {
          const key = `${id}#${n}`;
          const list = claims.get(key) ?? [];
          list.push({ b: ev.b as number, a: ev.a as number, s: ev.s as number, w: ev.w, token });
          claims.set(key, list);
          const nums = claimsByJob.get(id) ?? [];
          nums.push(n);
          claimsByJob.set(id, nums);
        }
        break;
      case "start": {
        const key = `${ev.j}#${ev.n}`;
        starts.set(key, [...(starts.get(key) ?? []), ev]);
        startsByJob.set(ev.j as string, [...(startsByJob.get(ev.j as string) ?? []), ev]);
        break;
      }
      case "end":
        ends.set(`${ev.j}#${ev.n}#${ev.w}#${ev.p}`, ev);
        break;
      case "renew":
        for (const token of ev.held ?? []) {
          renewedAt.set(token, Math.max(renewedAt.get(token) ?? 0, ev.b as number));
          addAccepted(token, "lease renewal", ev.b as number, "?");
        }
        break;
      case "complete": {
        const tokenOf = new Map((ev.sent as Array<[string, string]>).map(([id, token]) => [id, token]));
        const accepted = new Set(ev.acc ?? []);
        for (const [id, token] of tokenOf) {
          if (accepted.has(id)) {
            completionsAccepted.set(id, [...(completionsAccepted.get(id) ?? []), token]);
            addAccepted(token, "completion", ev.b as number, id);
          } else writesRefused++;
        }
        break;
      }
      case "fail-sent":
        holderMayEnd(ev.l as string, ev.b as number);
        break;
      case "release-sent":
        for (const [, token] of ev.sent as Array<[string, string]>) holderMayEnd(token, ev.b as number);
        break;
      case "fail":
        holderMayEnd(ev.l as string, ev.b as number);
        if (ev.out === "refused") writesRefused++;
        else {
          addAccepted(ev.l as string, `failure (${ev.out})`, ev.b as number, ev.j as string);
          if (ev.out === "failed") failedFinally.add(ev.j as string);
          else retriesAfterFailure++;
        }
        break;
      case "release": {
        const released = new Set(ev.ids ?? []);
        for (const [id, token] of ev.sent as Array<[string, string]>) {
          holderMayEnd(token, ev.b as number);
          if (released.has(id)) addAccepted(token, "release", ev.b as number, id);
        }
        break;
      }
      case "rescue":
        leasesRescued += (ev.retried ?? 0) + (ev.failed ?? 0);
        break;
    }
  }

  // twice: a claim ran at most once, and never after the job finished.
  for (const [key, list] of starts) {
    if (list.length > 1) flag("twice", `attempt ${key} started ${list.length} times (${list.map((s) => s.w).join(", ")})`);
  }
  for (const [key, list] of claims) {
    if (list.length > 1) flag("twice", `attempt ${key} was claimed ${list.length} times (${list.map((c) => c.w).join(", ")})`);
  }
  for (const [id, nums] of claimsByJob) {
    const h = hist.get(id);
    if (!h) continue;
    const beyond = nums.filter((n) => n > h.attempts);
    if (beyond.length > 0) flag("twice", `job ${JSON.stringify(id)} was claimed again (attempt ${beyond.join(", ")}) after it ${h.status} with ${h.attempts} attempt(s)`);
  }

  // lease: each claim came after the previous attempt's lease ended, and no write of an
  // earlier attempt was accepted after a later claim.
  let zombieOverlaps = 0;
  for (const [id, nums] of claimsByJob) {
    const ordered = [...new Set(nums)].sort((x, y) => x - y);
    for (let i = 0; i + 1 < ordered.length; i++) {
      const earlier = claims.get(`${id}#${ordered[i]}`)?.[0];
      const later = claims.get(`${id}#${ordered[i + 1]}`)?.[0];
      if (!earlier || !later) continue;
      // The earlier lease ended no sooner than it could expire (last claim or renewal sent + lease
      // length), unless its holder sent a write giving the job back first.
      const leaseFrom = Math.max(earlier.b, renewedAt.get(earlier.token) ?? 0);
      const expiresNoEarlierThan = leaseFrom + earlier.s * 1000;
      const givenBackFrom = leaseEndedByHolder.get(earlier.token) ?? Infinity;
      if (later.a + TOLERANCE_MS < Math.min(expiresNoEarlierThan, givenBackFrom)) {
        flag(
          "lease",
          `job ${JSON.stringify(id)}: attempt ${ordered[i + 1]} (${later.w}) was claimed at ${later.a}, while attempt ${ordered[i]} (${earlier.w}) ` +
            `still held the lease (claimed or renewed at ${leaseFrom}, so valid until at least ${expiresNoEarlierThan}` +
            `${givenBackFrom < Infinity ? `; its holder gave the job back only at ${givenBackFrom}` : ", and its holder never gave the job back"})`,
        );
      }
      for (const write of acceptedWrites.get(earlier.token) ?? []) {
        if (write.b > later.a + TOLERANCE_MS) {
          flag("lease", `job ${JSON.stringify(id)}: a ${write.kind} of attempt ${ordered[i]} (${earlier.w}) was accepted although it was sent at ${write.b}, after attempt ${ordered[i + 1]} (${later.w}) had claimed the job at ${later.a}`);
        }
      }
      // A zombie: the earlier attempt still ran when the later one started (allowed only without its lease, checked above).
      const startedLater = (starts.get(`${id}#${ordered[i + 1]}`) ?? [])[0];
      const startedEarlier = (starts.get(`${id}#${ordered[i]}`) ?? [])[0];
      if (startedLater && startedEarlier) {
        const end = ends.get(`${id}#${ordered[i]}#${startedEarlier.w}#${startedEarlier.p}`);
        if (end && (end.t as number) > (startedLater.t as number)) zombieOverlaps++;
      }
    }
  }

  // result: the recorded result is the lease holder's, accepted exactly once.
  for (const h of history) {
    const accepted = completionsAccepted.get(h.job_id) ?? [];
    if (accepted.length > 1) flag("result", `job ${JSON.stringify(h.job_id)}: ${accepted.length} completions were accepted`);
    if (h.status !== "completed") {
      if (accepted.length > 0) flag("result", `job ${JSON.stringify(h.job_id)} ended ${h.status} but a completion of it was accepted`);
      continue;
    }
    if (!createdIds.has(h.job_id)) continue;
    const r = h.result;
    if (!r || typeof r !== "object" || typeof r.n !== "number") {
      flag("result", `job ${JSON.stringify(h.job_id)} completed with a result that no chaos executor returned: ${JSON.stringify(r)}`);
      continue;
    }
    if (r.n !== h.attempts) flag("result", `job ${JSON.stringify(h.job_id)}: the recorded result is from attempt ${r.n} (${r.w}), but the lease belonged to attempt ${h.attempts} (${h.locked_by})`);
    else if (r.w !== h.locked_by) flag("result", `job ${JSON.stringify(h.job_id)}: the recorded result is from worker ${r.w}, but the lease holder was ${h.locked_by}`);
    const claim = claims.get(`${h.job_id}#${h.attempts}`)?.[0];
    // (r.l is null only if the attempt was claimed by a path the agents do not instrument.)
    if (claim && typeof r.l === "string" && claim.token !== r.l) flag("result", `job ${JSON.stringify(h.job_id)}: the recorded result carries lease ${r.l}, but attempt ${h.attempts} was claimed with lease ${claim.token}`);
    if (accepted.length === 1 && typeof r.l === "string" && accepted[0] !== r.l) flag("result", `job ${JSON.stringify(h.job_id)}: the accepted completion carried lease ${accepted[0]}, the stored result lease ${r.l}`);
  }

  // early: nothing starts before all its dependencies completed.
  for (const [id, list] of startsByJob) {
    const h = hist.get(id);
    if (!h) continue;
    if (h.status === "cancelled") flag("early", `job ${JSON.stringify(id)} ran (${list.length} attempt(s)) although it ended cancelled`);
    for (const start of list) {
      if ((start.dn ?? 0) > 0) flag("early", `job ${JSON.stringify(id)} attempt ${start.n} (${start.w}) started with ${start.dn} dependency result(s) missing (null)`);
    }
    const firstStart = Math.min(...list.map((s) => s.t as number));
    const firstClaim = Math.min(...(claimsByJob.get(id) ?? []).map((n) => claims.get(`${id}#${n}`)?.[0]?.a ?? Infinity));
    for (const dep of new Set(h.dependencies)) {
      const d = hist.get(dep);
      if (!d) {
        flag("early", `job ${JSON.stringify(id)} ran although its dependency ${JSON.stringify(dep)} never finished`);
      } else if (d.status !== "completed") {
        flag("early", `job ${JSON.stringify(id)} ran although its dependency ${JSON.stringify(dep)} ended ${d.status}`);
      } else if (Math.min(firstStart, firstClaim) + TOLERANCE_MS < d.completed_ms) {
        flag("early", `job ${JSON.stringify(id)} was claimed/started at ${Math.min(firstStart, firstClaim)}, before its dependency ${JSON.stringify(dep)} completed at ${Math.round(d.completed_ms)}`);
      }
    }
  }
  for (const h of history) {
    if (h.status === "completed") {
      for (const dep of new Set(h.dependencies)) {
        const d = hist.get(dep);
        if (d && d.status !== "completed") flag("early", `job ${JSON.stringify(h.job_id)} completed although its dependency ${JSON.stringify(dep)} ended ${d.status}`);
      }
    }
    if (h.status === "cancelled" && createdIds.has(h.job_id)) {
      const cause = [...new Set(h.dependencies)].some((dep) => {
        const d = hist.get(dep);
        return d && d.status !== "completed";
      });
      if (!cause) flag("status", `job ${JSON.stringify(h.job_id)} was cancelled although none of its dependencies failed or was cancelled (${h.error_message})`);
    }
  }

  // status: the graph decides how each job ends.
  if (options.expectStatuses) {
    const memo = new Map<string, string>();
    const expected = (id: string, depth = 0): string => {
      const known = memo.get(id);
      if (known) return known;
      const h = hist.get(id);
      if (!h || depth > 10_000) return "unknown";
      let value = "completed";
      for (const dep of new Set(h.dependencies)) {
        const e = expected(dep, depth + 1);
        if (e === "failed" || e === "cancelled") value = "cancelled";
      }
      if (value === "completed" && (h.payload?.parameters?.doom === true || h.payload?.query?.doom === true)) value = "failed";
      memo.set(id, value);
      return value;
    };
    for (const id of createdIds) {
      const h = hist.get(id);
      if (!h) continue;
      const want = expected(id);
      if (want !== h.status) flag("status", `job ${JSON.stringify(id)} ended ${h.status}, expected ${want} (${h.error_message ?? "no error"})`);
    }
  }

  const count = (status: string) => history.filter((h) => createdIds.has(h.job_id) && h.status === status).length;
  return {
    violations,
    figures: {
      jobs: createdIds.size,
      completed: count("completed"),
      failed: count("failed"),
      cancelled: count("cancelled"),
      claims: [...claims.values()].reduce((n, list) => n + list.length, 0),
      attempts: [...starts.values()].reduce((n, list) => n + list.length, 0),
      zombieOverlaps,
      completionsAccepted: [...completionsAccepted.values()].reduce((n, list) => n + list.length, 0),
      writesRefused,
      leasesRescued,
      retriesAfterFailure,
      workerProcesses: processes.size,
    },
  };
}

/**
 * Samples, while a scenario runs, that every live job's pending_dependencies
 * equals the number of its dependencies that have not completed (one
 * statement, so one consistent snapshot), that no live job waits on a
 * dependency that failed or was cancelled, and that no running job has an
 * unfinished dependency.
 */
export class DependencyAuditor {
  readonly violations: string[] = [];
  samples = 0;
  private timer: NodeJS.Timeout | undefined;
  private busy = false;

  constructor(private readonly pool: pg.Pool) {}

  async sample(): Promise<void> {
    const { rows } = await this.pool.query<{ id: string; status: string; pending_dependencies: number; open: number; dead: number }>(
      `WITH edges AS (
         SELECT d.job_id,
                count(*) FILTER (WHERE h.status IS DISTINCT FROM 'completed')::int AS open,
                count(*) FILTER (WHERE h.status IN ('failed', 'cancelled'))::int AS dead
           FROM job_dependencies d LEFT JOIN job_history h ON h.job_id = d.depends_on_id
          GROUP BY d.job_id
       )
       SELECT j.id, j.status, j.pending_dependencies, COALESCE(e.open, 0) AS open, COALESCE(e.dead, 0) AS dead
         FROM jobs j LEFT JOIN edges e ON e.job_id = j.id
        WHERE j.pending_dependencies <> COALESCE(e.open, 0) OR COALESCE(e.dead, 0) > 0
           OR (j.status = 'running' AND COALESCE(e.open, 0) > 0)
        LIMIT 20`,
    );
    this.samples++;
    for (const r of rows) {
      this.violations.push(
        `dependencies: job ${JSON.stringify(r.id)} (${r.status}) has pending_dependencies=${r.pending_dependencies} but ${r.open} unfinished ` +
          `dependencies${r.dead > 0 ? `, ${r.dead} of them failed or cancelled` : ""} (sample ${this.samples})`,
      );
    }
  }

  /** Samples every `everyMs` until stop(); a sample that fails (database down) is skipped. */
  start(everyMs: number): void {
    this.timer = setInterval(() => {
      if (this.busy) return;
      this.busy = true;
      this.sample()
        .catch(() => undefined)
        .finally(() => (this.busy = false));
    }, everyMs);
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    while (this.busy) await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
