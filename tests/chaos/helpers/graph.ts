import type { CreateJobInput } from "../../../src";

/** The job id of a dependency as given (an id, or an object with one). */
export function dependencyId(spec: unknown): string {
  return typeof spec === "string" ? spec : String((spec as { id?: unknown })?.id);
}

/** A small seeded PRNG (mulberry32), so a failing run can be repeated with CHAOS_SEED. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function seed(): number {
  const fromEnv = Number(process.env.CHAOS_SEED);
  return Number.isInteger(fromEnv) && fromEnv > 0 ? fromEnv : Math.floor(Math.random() * 2 ** 31) + 1;
}

export interface WorkParams {
  ms?: number;
  msRetry?: number;
  fail?: number;
  doom?: boolean;
}

/** A job for the chaos executor: an agent job, or (one in five) a query job through the query engine. */
export function workJob(id: string, params: WorkParams, dependencies: string[], rand: () => number, maxRetries = 25): CreateJobInput {
  const query = rand() < 0.2;
  return {
    id,
    jobType: query ? "query" : "agent",
    name: `chaos ${id}`,
    payload: query ? { query: { ...params }, inferred_goal_output: "chaos" } : { agent_name: "work", parameters: { ...params } },
    dependencies,
    // Crashes cost a retry each (an expired lease counts as a failed attempt): leave plenty.
    maxRetries: params.doom ? 1 : maxRetries,
    priority: Math.floor(rand() * 3),
  };
}

/**
 * A mixed graph of `total` jobs in segments: chains, fan-out trees, fan-ins,
 * diamonds, flaky jobs that fail once or twice and succeed on a retry, and
 * doomed jobs that always fail (their downstream ends cancelled). About one
 * job in eight also waits on a random job of an earlier segment, so the graph
 * is one tangle rather than islands. Jobs take 0 to a few hundred ms, so
 * kills land mid-attempt. Returns the jobs in batches of about `batchSize`,
 * each batch depending only on itself and earlier batches.
 */
export function mixedGraph(total: number, rand: () => number, batchSize = 500): CreateJobInput[][] {
  const jobs: CreateJobInput[] = [];
  let n = 0;
  const id = () => `g${n++}`;
  const ms = () => {
    const x = rand();
    return x < 0.6 ? 0 : x < 0.9 ? Math.floor(rand() * 20) : x < 0.98 ? Math.floor(rand() * 150) : 300 + Math.floor(rand() * 400);
  };
  const params = (): WorkParams => {
    const x = rand();
    if (x < 0.04) return { ms: ms(), fail: 1 + Math.floor(rand() * 2) };
    return { ms: ms() };
  };
  const earlier = () => (jobs.length > 50 && rand() < 0.12 ? [jobs[Math.floor(rand() * (jobs.length - 20))].id as string] : []);
  const add = (deps: string[], p: WorkParams = params()) => {
    const job = workJob(id(), p, [...new Set([...deps, ...earlier()])], rand);
    jobs.push(job);
    return job.id as string;
  };
  while (jobs.length < total) {
    const left = total - jobs.length;
    const kind = rand();
    if (kind < 0.3) {
      // chain
      let prev: string[] = [];
      for (let i = 0, len = Math.min(left, 3 + Math.floor(rand() * 12)); i < len; i++) prev = [add(prev)];
    } else if (kind < 0.5) {
      // fan-out, some children with a child of their own
      const rootId = add([]);
      for (let i = 0, k = Math.min(left - 1, 5 + Math.floor(rand() * 25)); i < k && jobs.length < total; i++) {
        const child = add([rootId]);
        if (rand() < 0.3 && jobs.length < total) add([child]);
      }
    } else if (kind < 0.7) {
      // fan-in
      const sources: string[] = [];
      for (let i = 0, k = Math.min(left - 1, 5 + Math.floor(rand() * 30)); i < k; i++) sources.push(add([]));
      if (jobs.length < total) add(sources);
    } else if (kind < 0.85) {
      // diamonds
      const top = add([]);
      if (jobs.length + 3 <= total) add([add([top]), add([top])]);
    } else if (kind < 0.93) {
      // a doomed job: fails for good, its subtree (and a fan-in mixing it with healthy jobs) ends cancelled
      const doomed = add([], { ms: ms(), doom: true });
      const healthy = add([]);
      const sub: string[] = [];
      for (let i = 0, k = Math.min(Math.max(0, total - jobs.length), 2 + Math.floor(rand() * 6)); i < k; i++) {
        sub.push(add([sub.length > 0 && rand() < 0.5 ? sub[Math.floor(rand() * sub.length)] : doomed]));
      }
      if (jobs.length < total) add([doomed, healthy]);
    } else {
      // independent jobs
      for (let i = 0, k = Math.min(left, 10 + Math.floor(rand() * 40)); i < k; i++) add([]);
    }
  }
  jobs.length = total;
  // Batches: in order, so every dependency is in the same or an earlier batch.
  const batches: CreateJobInput[][] = [];
  for (let i = 0; i < jobs.length; i += batchSize) batches.push(jobs.slice(i, i + batchSize));
  // A job cut off by the truncation above may be named as a dependency: drop such edges.
  const ids = new Set(jobs.map((j) => j.id));
  for (const job of jobs) job.dependencies = (job.dependencies ?? []).filter((d) => ids.has(dependencyId(d)));
  return batches;
}
