import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { createPrismaClient, JobManager, type PrismaClient } from "../../src";
import { budget } from "./helpers/budget";
import { checkInvariants, DependencyAuditor } from "./helpers/checker";
import { Cluster, delay, drain } from "./helpers/cluster";
import { mixedGraph, prng, seed } from "./helpers/graph";
import { describeViolations, writeReport } from "./helpers/report";
import { createDatabase, dropDatabase, sharedAdminUrl } from "./helpers/server";

/**
 * Worker crashes. 4-8 worker processes drain a mixed graph (chains, fan-out,
 * fan-in, diamonds, flaky jobs that succeed on a retry, doomed jobs whose
 * downstream is cancelled) while a controller kill -9s a random worker every
 * few seconds and starts a replacement. The jobs are created while the
 * workers already run. Afterwards the checker proves: no job lost, none ran
 * on two workers while both held its lease, none ran again after it finished,
 * every result is the lease holder's, and no job started before its
 * dependencies completed; pending_dependencies is sampled during the run.
 */
const B = budget().crash;
const runSeed = seed();

let url: string;
let pool: pg.Pool;
let prisma: PrismaClient;
let logDir: string;
let cluster: Cluster | undefined;
let failed = true;

beforeAll(async () => {
  url = await createDatabase(sharedAdminUrl(), "crash");
  pool = new pg.Pool({ connectionString: url, max: 4 });
  prisma = createPrismaClient(url);
  logDir = mkdtempSync(path.join(os.tmpdir(), "skein-chaos-crash-"));
});

afterAll(async () => {
  await cluster?.killAll();
  await prisma?.$disconnect();
  await pool?.end();
  if (failed) {
    process.stderr.write(`crash scenario failed (seed ${runSeed}): execution logs kept in ${logDir}, database ${url}\n`);
  } else {
    rmSync(logDir, { recursive: true, force: true });
    await dropDatabase(url);
  }
});

it(`${B.jobs} jobs survive ${B.workers} workers being kill -9'd every few seconds`, async () => {
  const started = Date.now();
  const rand = prng(runSeed);
  const batches = mixedGraph(B.jobs, rand);
  const jobManager = new JobManager(prisma);
  cluster = new Cluster({ databaseUrl: url, logDir, concurrency: B.concurrency });
  const c = cluster;
  for (let i = 0; i < B.workers; i++) c.start();
  c.replaceDeadWorkers(20); // a worker that dies on its own is a violation; replacing it keeps the run informative
  const auditor = new DependencyAuditor(pool);
  auditor.start(2000);

  // The controller: kill -9 a random worker every few seconds, start another in its place.
  let stopping = false;
  const controller = (async () => {
    const deadline = started + B.deadlineMs;
    while (!stopping && Date.now() < deadline) {
      await delay(B.killEveryMs[0] + rand() * (B.killEveryMs[1] - B.killEveryMs[0]));
      if (stopping) break;
      const live = c.live();
      if (live.length === 0) continue;
      await c.kill(live[Math.floor(rand() * live.length)]);
      c.start();
    }
  })();

  const created: string[] = [];
  for (const batch of batches) {
    await jobManager.createJobs(batch);
    for (const job of batch) created.push(job.id as string);
  }
  const createdAt = Date.now();
  const stuck = await drain(pool, `all ${B.jobs} jobs to finish`, Math.max(10_000, started + B.deadlineMs - Date.now()));
  stopping = true;
  await controller;
  await auditor.stop();
  const drainedAt = Date.now();
  await auditor.sample();
  const exits = await c.stopAll();
  const badExits = exits.filter((e) => e.code !== 0).map((e) => `exit: worker ${e.id} exited with ${e.code ?? e.signal} on SIGTERM`);

  const result = await checkInvariants(pool, logDir, created, {
    expectStatuses: true,
    extraViolations: [...(stuck ? [stuck] : []), ...c.survivalViolations(), ...auditor.violations, ...badExits],
  });
  const kills = c.faults.filter((f) => f.kind === "kill -9").length;
  writeReport({
    scenario: "crash",
    budget: budget().name,
    seed: runSeed,
    startedAt: new Date(started).toISOString(),
    durationSeconds: (Date.now() - started) / 1000,
    jobs: created.length,
    faults: { "kill -9": kills },
    workerProcesses: c.workers.length,
    figures: {
      "workers that died on their own": c.died.length,
      ...result.figures,
      "jobs per second (created to drained)": Math.round(created.length / ((drainedAt - started) / 1000)),
      "seconds from last insert to drained": Math.round((drainedAt - createdAt) / 100) / 10,
      "dependency samples": auditor.samples,
    },
    violations: result.violations,
  });
  if (result.violations.length > 0) throw new Error(describeViolations(result.violations));
  expect(kills).toBeGreaterThan(0);
  expect(result.figures.completed + result.figures.failed + result.figures.cancelled).toBe(B.jobs);
  failed = false;
});
