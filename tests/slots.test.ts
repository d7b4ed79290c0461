import { createPrismaClient, JobManager, PrismaClient, Worker, type JobContext } from "../src";
import { PrismaPg } from "@prisma/adapter-pg";
import type { JobRow } from "../src/db/sql/rows";
import type { RunningJob } from "../src/worker/runner";
import { AdaptivePrefetch, fixedPrefetch } from "../src/worker/prefetch";
import { SlotLedger } from "../src/worker/slots";
import { truncateAll, useTestDatabase } from "./helpers/db";
import { waitFor } from "./helpers/wait";

const row = (id: string): JobRow => ({ id, lease_token: `lease-${id}` }) as JobRow;
const running = (id: string): RunningJob => ({ job: { id } }) as unknown as RunningJob;

/** A ledger on a clock the test moves (milliseconds). */
function ledger(limits: { maxConcurrentJobs: number; prefetch: number }, marginMs = 1_000) {
  const dropped: string[] = [];
  return { ledger: new SlotLedger({ maxConcurrentJobs: limits.maxConcurrentJobs, prefetch: fixedPrefetch(limits.prefetch) }, { marginMs, onDropped: (r) => dropped.push(r.id) }), dropped };
}

describe("prefetch: \"auto\"", () => {
  it("holds nothing before it has seen a job end, many for jobs shorter than a claim (capped), none for long ones", () => {
    const auto = new AdaptivePrefetch(10);
    expect(auto.value).toBe(0);
    auto.claimed(2);
    expect(auto.value).toBe(0);
    auto.ran(0.05); // no-op jobs
    expect(auto.value).toBe(100); // min(10 x 10, max(100, 2 x 10))
    for (let i = 0; i < 60; i++) auto.ran(1.5); // still shorter than a claim
    expect(auto.value).toBe(100);
    for (let i = 0; i < 80; i++) auto.ran(20); // ten times a claim
    expect(auto.value).toBe(10); // 100 x 2 ms / 20 ms
    for (let i = 0; i < 80; i++) auto.ran(1000);
    expect(auto.value).toBe(0);
    const wide = new AdaptivePrefetch(50);
    wide.claimed(2);
    wide.ran(0.05);
    expect(wide.value).toBe(100);
    const small = new AdaptivePrefetch(2);
    small.claimed(2);
    small.ran(0.05);
    expect(small.value).toBe(20);
  });
});

describe("SlotLedger", () => {
  it("claims for free slots, less completions backed up beyond one slot each (or prefetch)", () => {
    const { ledger: l } = ledger({ maxConcurrentJobs: 4, prefetch: 0 });
    expect(l.budget(0)).toEqual({ free: 4, throttled: false });
    l.running.set("a", running("a"));
    expect(l.budget(4)).toEqual({ free: 3, throttled: false }); // a slot's worth of completions each is fine
    expect(l.budget(6)).toEqual({ free: 1, throttled: true });
    const { ledger: p } = ledger({ maxConcurrentJobs: 4, prefetch: 10 });
    expect(p.budget(10)).toEqual({ free: 4, throttled: false });
    expect(p.budget(13)).toEqual({ free: 1, throttled: true });
  });

  it("refills the held jobs once a quarter of prefetch is left, with the rest of it", () => {
    const { ledger: l } = ledger({ maxConcurrentJobs: 2, prefetch: 8 });
    expect(l.refill()).toBe(8);
    l.hold([row("1"), row("2"), row("3")], 0, 60_000);
    expect(l.refill()).toBe(0); // 3 > 8 / 4
    l.take(1, 10);
    expect(l.refill()).toBe(6);
    expect(new SlotLedger({ maxConcurrentJobs: 2, prefetch: fixedPrefetch(0) }, { marginMs: 0, onDropped: () => undefined }).refill()).toBe(0);
  });

  it("gives completions room for running plus held, and names the surplus held while every slot runs", () => {
    const { ledger: l } = ledger({ maxConcurrentJobs: 2, prefetch: 1 });
    expect(l.handoffRoom()).toBe(3);
    l.hold([row("h1"), row("h2")], 0, 60_000);
    l.running.set("r1", running("r1"));
    expect(l.handoffRoom()).toBe(0);
    expect(l.surplus()).toBe(0); // a slot is free: the held jobs will start here
    l.running.set("r2", running("r2"));
    expect(l.surplus()).toBe(1);
    expect(l.removeNewest(l.surplus()).map((r) => r.id)).toEqual(["h2"]);
  });

  it("starts a claimed job only while its lease, by the clock at that moment, outlasts the margin", () => {
    const { ledger: l, dropped } = ledger({ maxConcurrentJobs: 4, prefetch: 0 }, 1_000);
    // Claimed at 0 with a 10 s lease, then the worker stood still for 9.5 s before starting them.
    l.hold([row("a"), row("b")], 0, 10_000);
    expect(l.take(2, 9_500)).toEqual([]);
    expect(dropped).toEqual(["a", "b"]);
    // The same claim taken at once starts.
    l.hold([row("c")], 100, 10_000);
    expect(l.take(1, 200).map((r) => r.id)).toEqual(["c"]);
    expect(l.waitedMs(row("c"))).toBeUndefined(); // (waited is noted per row object)
  });

  it("a renewal that failed extends nothing: held jobs lose their lease on time", () => {
    const { ledger: l, dropped } = ledger({ maxConcurrentJobs: 1, prefetch: 4 }, 1_000);
    l.hold([row("x")], 0, 10_000);
    l.heldLeases(); // a renewal was asked for, and its write failed: renewed() is never called
    expect(l.take(1, 9_001)).toEqual([]);
    expect(dropped).toEqual(["x"]);
  });
});

describe("a worker paused between its claim and the start of the jobs", () => {
  const ctx = useTestDatabase();
  beforeEach(() => truncateAll(ctx.pool));

  /**
   * The application-style client of the "paused" worker: the claim statement
   * runs (and commits) at once, but its reply reaches the worker only after
   * `pauseMs`, as if the process had been stopped (SIGSTOP) right after
   * claiming. Meanwhile its leases expire and another worker rescues the jobs.
   */
  function pausingClient(pauseMs: number): { client: PrismaClient; paused: Promise<void> } {
    const real = new PrismaClient({ adapter: new PrismaPg({ connectionString: ctx.db.url, max: 4 }) });
    let armed = true;
    let resumed!: () => void;
    const paused = new Promise<void>((resolve) => (resumed = resolve));
    const client = new Proxy(real, {
      get(target, property, receiver) {
        if (property !== "$queryRawUnsafe") return Reflect.get(target, property, receiver);
        return async (text: string, ...values: unknown[]) => {
          const rows = await target.$queryRawUnsafe(text, ...values);
          if (armed && text.includes("candidates AS MATERIALIZED") && Array.isArray(rows) && rows.some((r: { id: string | null }) => r.id !== null)) {
            armed = false;
            await new Promise((resolve) => setTimeout(resolve, pauseMs));
            resumed();
          }
          return rows;
        };
      },
    });
    return { client, paused };
  }

  it("starts none of the jobs whose leases ran out meanwhile: each ran once, on the worker that rescued it", async () => {
    const runs: Array<{ worker: string; job: string }> = [];
    const agentRegistry = { mark: async (_p: unknown, c: JobContext) => void runs.push({ worker: c.workerId, job: c.job.id }) };
    const jobManager = new JobManager(ctx.prisma);
    await jobManager.createJobs(["p1", "p2", "p3"].map((id) => ({ id, jobType: "agent" as const, name: id, payload: { agent_name: "mark" }, maxRetries: 2 })));
    const { client, paused } = pausingClient(3_000);
    const sleeper = new Worker({ prisma: client, schema: "skein", workerId: "sleeper", maxConcurrentJobs: 3, pollInterval: 0.05, staleTimeout: 1, heartbeatInterval: 0.3, maintenance: false, agentRegistry });
    const other = createPrismaClient(ctx.db.url);
    const rescuer = new Worker({ prisma: other, workerId: "rescuer", maxConcurrentJobs: 3, pollInterval: 0.1, staleTimeout: 5, heartbeatInterval: 0.2, agentRegistry });
    try {
      await sleeper.start();
      await waitFor(async () => (await ctx.pool.query("SELECT count(*)::int AS n FROM jobs WHERE locked_by = 'sleeper'")).rows[0].n === 3, "the sleeper's claim");
      await rescuer.start();
      await waitFor(async () => (await ctx.pool.query("SELECT count(*)::int AS n FROM job_history WHERE status = 'completed'")).rows[0].n === 3, "the rescuer to run them");
      await paused;
      await new Promise((resolve) => setTimeout(resolve, 500)); // the sleeper has its reply now: it must start nothing
    } finally {
      await sleeper.stop();
      await rescuer.stop();
      await other.$disconnect();
      await client.$disconnect();
    }
    expect(runs.filter((r) => r.worker === "sleeper")).toEqual([]);
    expect(runs.map((r) => r.job).sort()).toEqual(["p1", "p2", "p3"]);
  });
});
