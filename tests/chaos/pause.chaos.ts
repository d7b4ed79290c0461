import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { createPrismaClient, JobManager, type PrismaClient } from "../../src";
import { budget, LEASE } from "./helpers/budget";
import { checkInvariants, readEvents } from "./helpers/checker";
import { Cluster, delay, until } from "./helpers/cluster";
import { describeViolations, writeReport } from "./helpers/report";
import { createDatabase, dropDatabase, sharedAdminUrl } from "./helpers/server";

/**
 * Clock and lease: a worker is paused with SIGSTOP in the middle of its
 * attempts, for longer than its lease. A healthy worker reclaims the jobs
 * once the leases expire and starts them again. The paused worker is resumed
 * while the healthy worker still runs them: the zombie's attempts end at once
 * (their timers are overdue) and it tries to record them, a completion for
 * most jobs and a failure for one flaky job. Every such write must be
 * refused, and each job's recorded result must be the healthy run's.
 */
const B = budget().pause;

let url: string;
let pool: pg.Pool;
let prisma: PrismaClient;
let logDir: string;
let cluster: Cluster | undefined;
let failed = true;

beforeAll(async () => {
  url = await createDatabase(sharedAdminUrl(), "pause");
  pool = new pg.Pool({ connectionString: url, max: 2 });
  prisma = createPrismaClient(url);
  logDir = mkdtempSync(path.join(os.tmpdir(), "skein-chaos-pause-"));
});

afterAll(async () => {
  await cluster?.killAll();
  await prisma?.$disconnect();
  await pool?.end();
  if (failed) process.stderr.write(`pause scenario failed: execution logs kept in ${logDir}, database ${url}\n`);
  else {
    rmSync(logDir, { recursive: true, force: true });
    await dropDatabase(url);
  }
});

const lockedBy = async (ids: string[]) =>
  (await pool.query<{ id: string; locked_by: string | null; status: string }>("SELECT id, locked_by, status FROM jobs WHERE id = ANY($1::text[])", [ids])).rows;

it(`a worker paused past its lease (SIGSTOP) is refused when it resumes, ${B.rounds} round(s)`, async () => {
  const started = Date.now();
  const jobManager = new JobManager(prisma);
  cluster = new Cluster({ databaseUrl: url, logDir, concurrency: B.jobsPerRound, pollInterval: 0.5 });
  const c = cluster;
  const created: string[] = [];
  const violations: string[] = [];
  let zombieWrites = 0;
  let refusedZombieWrites = 0;

  for (let round = 1; round <= B.rounds; round++) {
    const zombie = c.start(`zombie${round}`);
    await until(async () => (await pool.query("SELECT 1 FROM workers WHERE id = $1", [zombie.id])).rowCount, `${zombie.id} to register`, 30_000);
    // First attempts take 2 s, later ones 5 s: the zombie's attempts are overdue when it resumes
    // (its lease of 3 s must expire first), the healthy worker's still run.
    const ids = Array.from({ length: B.jobsPerRound }, (_, i) => `r${round}-j${i}`);
    await jobManager.createJobs(
      ids.map((id, i) => ({
        id,
        jobType: "agent" as const,
        name: id,
        // The first job's first attempt fails: the zombie's write is then a failure, also to be refused.
        payload: { agent_name: "work", parameters: { ms: 2000, msRetry: 5000, fail: i === 0 ? 1 : 0 } },
        maxRetries: 3,
      })),
    );
    created.push(...ids);
    await until(async () => (await lockedBy(ids)).every((r) => r.locked_by === zombie.id), `${zombie.id} to start all ${ids.length} jobs`, 20_000, 20);
    await delay(200);
    c.pause(zombie);
    const pausedAt = Date.now();
    const healthy = c.start(`healthy${round}`);
    await until(async () => (await lockedBy(ids)).every((r) => r.locked_by === healthy.id), `${healthy.id} to reclaim all jobs after the leases expired`, 30_000, 20);
    const reclaimedAfterMs = Date.now() - pausedAt;
    if (reclaimedAfterMs < LEASE.staleTimeout * 1000 - 250) violations.push(`lease: the jobs were reclaimed ${reclaimedAfterMs} ms after the pause, before a ${LEASE.staleTimeout} s lease could expire`);
    c.resume(zombie);
    zombie.fate = undefined;
    // The zombie records its overdue attempts now; the healthy worker still runs its own.
    await until(
      async () => {
        const mine = readEvents(logDir).filter((e) => e.w === zombie.id && (e.e === "complete" || e.e === "fail" || e.e === "complete-error" || e.e === "fail-error"));
        const touched = new Set(mine.flatMap((e) => (e.e === "fail" || e.e === "fail-error" ? [e.j] : (e.sent as Array<[string, string]>).map(([id]) => id))));
        return ids.every((id) => touched.has(id));
      },
      `${zombie.id} to try to record all ${ids.length} of its attempts`,
      20_000,
    ).catch((error: Error) => violations.push(`zombie: ${error.message} (its write was never attempted, so this round proves nothing)`));
    await until(async () => (await lockedBy(ids)).length === 0, `round ${round}'s jobs to finish`, 30_000);
    for (const e of readEvents(logDir).filter((ev) => ev.w === zombie.id)) {
      if (e.e === "complete") {
        const sent = (e.sent as Array<[string, string]>).filter(([id]) => ids.includes(id));
        zombieWrites += sent.length;
        refusedZombieWrites += sent.filter(([id]) => !(e.acc ?? []).includes(id)).length;
      } else if (e.e === "fail" && ids.includes(e.j as string)) {
        zombieWrites++;
        if (e.out === "refused") refusedZombieWrites++;
      }
    }
    for (const id of ids) {
      const job = await jobManager.getJob(id);
      const result = job?.result as { w?: string } | null;
      if (job?.status !== "completed" || result?.w !== healthy.id) {
        violations.push(`result: job ${id} ended ${job?.status} with the result of ${result?.w ?? "nobody"}, expected completed by ${healthy.id}`);
      }
    }
    if (!/completion refused/.test(c.output(zombie))) violations.push(`zombie: ${zombie.id} never logged a refused completion`);
    const exits = await Promise.all(
      [zombie, healthy].map(async (w) => {
        w.fate = "stopped";
        w.child.kill("SIGTERM");
        return { id: w.id, ...(await w.exited) };
      }),
    );
    for (const e of exits) if (e.code !== 0) violations.push(`exit: ${e.id} exited with ${e.code ?? e.signal} on SIGTERM`);
  }

  violations.push(...c.survivalViolations());
  if (zombieWrites !== refusedZombieWrites) violations.push(`lease: ${zombieWrites - refusedZombieWrites} of ${zombieWrites} zombie writes were accepted`);
  const result = await checkInvariants(pool, logDir, created, { expectStatuses: true, extraViolations: violations });
  writeReport({
    scenario: "pause",
    budget: budget().name,
    startedAt: new Date(started).toISOString(),
    durationSeconds: (Date.now() - started) / 1000,
    jobs: created.length,
    faults: { SIGSTOP: c.faults.filter((f) => f.kind === "SIGSTOP").length },
    workerProcesses: c.workers.length,
    figures: { ...result.figures, "zombie writes attempted": zombieWrites, "zombie writes refused": refusedZombieWrites },
    violations: result.violations,
  });
  if (result.violations.length > 0) throw new Error(describeViolations(result.violations));
  expect(zombieWrites).toBeGreaterThanOrEqual(B.rounds * B.jobsPerRound);
  failed = false;
});
