/**
 * Sizes of every scenario. `npm run test:chaos` runs the full budget (the
 * issue's 20,000 jobs through worker crashes); `CHAOS_BUDGET=short` runs the
 * same scenarios small enough for CI (the whole suite in well under three
 * minutes). Every loop in the suite is bounded by these counts and deadlines.
 */
export type BudgetName = "full" | "short";

export interface Budget {
  name: BudgetName;
  crash: { jobs: number; workers: number; concurrency: number; killEveryMs: [number, number]; deadlineMs: number };
  dbFaults: {
    jobs: number;
    workers: number;
    concurrency: number;
    /** Each entry is one fault window, run in this order while the jobs drain. */
    faults: Array<"restart-fast" | "restart-immediate" | "terminate" | "statement-timeout" | "pool-full">;
    downMs: number;
    deadlineMs: number;
  };
  pause: { rounds: number; jobsPerRound: number };
  graphs: { builders: number; rounds: number; batch: number; workers: number; deadlineMs: number };
  migrations: { processes: number; rounds: number };
  badInput: { apiRuns: number; cliRuns: number };
  /** Durable workflows (steps, delegated children, sleeps) through worker crashes. */
  workflow: { flows: number; workers: number; concurrency: number; killEveryMs: [number, number]; deadlineMs: number };
  /** Generated HTTP requests: how many, with fresh fixtures every `reseedEvery`. */
  httpRequests: { requests: number; reseedEvery: number; deadlineMs: number };
}

const FULL: Budget = {
  name: "full",
  crash: { jobs: 20_000, workers: 6, concurrency: 8, killEveryMs: [1500, 4000], deadlineMs: 15 * 60_000 },
  dbFaults: {
    jobs: 6000,
    workers: 4,
    concurrency: 8,
    faults: ["terminate", "restart-fast", "statement-timeout", "terminate", "pool-full", "restart-immediate", "terminate", "restart-fast"],
    downMs: 4000,
    deadlineMs: 10 * 60_000,
  },
  pause: { rounds: 3, jobsPerRound: 4 },
  graphs: { builders: 8, rounds: 40, batch: 20, workers: 3, deadlineMs: 8 * 60_000 },
  migrations: { processes: 10, rounds: 4 },
  badInput: { apiRuns: 150, cliRuns: 40 },
  workflow: { flows: 400, workers: 4, concurrency: 8, killEveryMs: [1500, 4000], deadlineMs: 10 * 60_000 },
  httpRequests: { requests: 6000, reseedEvery: 500, deadlineMs: 10 * 60_000 },
};

const SHORT: Budget = {
  name: "short",
  crash: { jobs: 1500, workers: 4, concurrency: 8, killEveryMs: [1500, 3000], deadlineMs: 80_000 },
  dbFaults: {
    jobs: 900,
    workers: 3,
    concurrency: 6,
    faults: ["terminate", "restart-fast", "statement-timeout", "pool-full", "restart-immediate"],
    downMs: 2500,
    deadlineMs: 90_000,
  },
  pause: { rounds: 1, jobsPerRound: 3 },
  graphs: { builders: 6, rounds: 12, batch: 15, workers: 2, deadlineMs: 60_000 },
  migrations: { processes: 10, rounds: 1 },
  badInput: { apiRuns: 30, cliRuns: 8 },
  workflow: { flows: 60, workers: 3, concurrency: 6, killEveryMs: [1500, 3000], deadlineMs: 90_000 },
  httpRequests: { requests: 800, reseedEvery: 200, deadlineMs: 90_000 },
};

export function budget(): Budget {
  const name = (process.env.CHAOS_BUDGET ?? "full").trim().toLowerCase();
  if (name === "short") return SHORT;
  if (name === "full" || name === "") return FULL;
  throw new Error(`CHAOS_BUDGET must be "full" or "short" (got ${JSON.stringify(process.env.CHAOS_BUDGET)})`);
}

/** Lease settings of every worker process in the suite: leases expire within seconds. */
export const LEASE = { staleTimeout: 3, heartbeatInterval: 1 } as const;
