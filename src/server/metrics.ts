import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { Database } from "../db/database";
import { eventCounts, jobCountsByQueue, workerRows } from "../db/sql/server";
import type { JobManager } from "../jobs/JobManager";
import type { Job } from "../core/types";
import type { Worker } from "../worker/Worker";

/**
 * Prometheus metrics. Job counts, workers, retries, lease losses, rate-limit
 * waits and tokens are read from the database at each scrape (so they cover
 * every worker); claim and run latencies are observed from the workers that
 * run in this process (`run-worker --serve`).
 */
export class Metrics {
  readonly registry = new Registry();
  private readonly claimLatency: Histogram;
  private readonly runSeconds: Histogram;
  private readonly outcomes: Counter;

  constructor(db: Database, jobManager: JobManager) {
    const registry = this.registry;
    new Gauge({
      name: "skein_jobs",
      help: "Jobs by status and queue (live and in history)",
      labelNames: ["status", "queue"],
      registers: [registry],
      async collect() {
        this.reset();
        for (const r of await jobCountsByQueue(db)) this.inc({ status: r.status, queue: r.queue }, r.n);
      },
    });
    new Gauge({
      name: "skein_job_events",
      help: "Recorded attempt endings other than completion: retried, lease_lost, released, rate_limited (kept until history is pruned)",
      labelNames: ["event"],
      registers: [registry],
      async collect() {
        this.reset();
        for (const r of await eventCounts(db)) this.set({ event: r.event }, r.n);
      },
    });
    new Gauge({
      name: "skein_workers",
      help: "Registered workers by status",
      labelNames: ["status"],
      registers: [registry],
      async collect() {
        this.reset();
        for (const w of await workerRows(db)) this.inc({ status: w.status });
      },
    });
    new Gauge({
      name: "skein_rate_limit_tokens",
      help: "Tokens available now per rate-limit key",
      labelNames: ["key"],
      registers: [registry],
      async collect() {
        this.reset();
        for (const l of await jobManager.getRateLimits()) this.set({ key: l.key }, l.tokens);
      },
    });
    this.claimLatency = new Histogram({
      name: "skein_claim_latency_seconds",
      help: "From a job becoming ready to its start, observed by this process's workers",
      buckets: [0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    });
    this.runSeconds = new Histogram({
      name: "skein_run_seconds",
      help: "Duration of attempts run by this process's workers",
      labelNames: ["outcome"],
      buckets: [0.001, 0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300],
      registers: [registry],
    });
    this.outcomes = new Counter({ name: "skein_attempts_total", help: "Attempts finished by this process's workers, by outcome", labelNames: ["outcome"], registers: [registry] });
  }

  /** Observes a worker's claims and attempts. */
  observe(worker: Worker): void {
    const started = new Map<string, number>();
    worker.on("job:start", (job: Job) => {
      const now = Date.now();
      started.set(job.id, now);
      const ready = Math.max((job.readyAt ?? job.createdAt).getTime(), job.runAt.getTime());
      this.claimLatency.observe(Math.max(0, (now - ready) / 1000));
    });
    const finish = (job: Job, outcome: string) => {
      const at = started.get(job.id);
      started.delete(job.id);
      if (at !== undefined) this.runSeconds.observe({ outcome }, (Date.now() - at) / 1000);
      this.outcomes.inc({ outcome });
    };
    worker.on("job:complete", (job: Job) => finish(job, "completed"));
    worker.on("job:fail", (job: Job, _error: string, outcome: string) => finish(job, outcome));
  }
}
