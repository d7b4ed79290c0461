-- Flow control: per-key rate limits and concurrency caps, tenant weights for
-- fair sharing, worker queues and tags, and tasks (groups of jobs with
-- progress). Append-only: never edit once applied; add a new migration.

-- A token bucket per rate-limit key, shared by every worker. A worker refills
-- and charges it inside its claim transaction, holding the row lock, so the
-- limit holds across all workers together. `rate_per_second` NULL means no
-- rate (the row only records a pause asked for by an executor).
CREATE TABLE "rate_limits" (
    "key" TEXT NOT NULL,
    "rate_per_second" DOUBLE PRECISION,
    "burst" DOUBLE PRECISION NOT NULL DEFAULT 1,
    "tokens" DOUBLE PRECISION NOT NULL DEFAULT 1,
    "refilled_at" TIMESTAMPTZ(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "paused_until" TIMESTAMPTZ(6),
    "updated_at" TIMESTAMPTZ(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "rate_limits_pkey" PRIMARY KEY ("key"),
    CONSTRAINT "rate_limits_rate_check" CHECK ("rate_per_second" IS NULL OR "rate_per_second" > 0),
    CONSTRAINT "rate_limits_burst_check" CHECK ("burst" >= 1)
);

-- At most `max_running` jobs with this concurrency key run at once. The count
-- is taken from `jobs` (status running) after locking this row, so it is exact.
CREATE TABLE "concurrency_limits" (
    "key" TEXT NOT NULL,
    "max_running" INTEGER NOT NULL,
    "updated_at" TIMESTAMPTZ(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "concurrency_limits_pkey" PRIMARY KEY ("key"),
    CONSTRAINT "concurrency_limits_max_running_check" CHECK ("max_running" >= 1)
);

-- Weighted round-robin between tenants (default weight 1).
CREATE TABLE "tenant_weights" (
    "tenant" TEXT NOT NULL,
    "weight" INTEGER NOT NULL,
    "updated_at" TIMESTAMPTZ(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "tenant_weights_pkey" PRIMARY KEY ("tenant"),
    CONSTRAINT "tenant_weights_weight_check" CHECK ("weight" BETWEEN 1 AND 1000)
);

-- A task groups many jobs of one tenant and reports progress.
CREATE TABLE "tasks" (
    "id" TEXT NOT NULL,
    "tenant" TEXT,
    "name" TEXT NOT NULL,
    "total_jobs" INTEGER NOT NULL,
    "current_step" JSONB,
    "created_at" TIMESTAMPTZ(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "tasks_pkey" PRIMARY KEY ("id")
);

-- What each worker serves (NULL queues: every queue).
ALTER TABLE "workers" ADD COLUMN "queues" TEXT[];
ALTER TABLE "workers" ADD COLUMN "tags" TEXT[] NOT NULL DEFAULT ARRAY[]::TEXT[];

-- The readiness index, now grouped by tenant (jobs without a tenant form the
-- group ''). Plain jobs are one range of it, in claim order; fair sharing
-- walks its distinct tenants with a skip scan and takes each one's head.
DROP INDEX "jobs_ready_idx";
CREATE INDEX "jobs_ready_idx" ON "jobs" ((COALESCE("tenant", '')), "priority" DESC, "run_at", "id")
    WHERE "status" = 'pending' AND "pending_dependencies" = 0;

-- Ready jobs that need the flow-control claim (a tenant, a rate-limit key or a
-- concurrency key). Small or empty when those features are unused; it tells a
-- worker cheaply whether it must use the flow-control claim at all.
CREATE INDEX "jobs_ready_flow_idx" ON "jobs" ("run_at")
    WHERE "status" = 'pending' AND "pending_dependencies" = 0
      AND ("tenant" IS NOT NULL OR "rate_limit_key" IS NOT NULL OR "concurrency_key" IS NOT NULL);

-- Running jobs per concurrency key, counted under the key's lock.
CREATE INDEX "jobs_running_concurrency_idx" ON "jobs" ("concurrency_key")
    WHERE "status" = 'running' AND "concurrency_key" IS NOT NULL;

-- A task's jobs, live and archived.
CREATE INDEX "jobs_task_idx" ON "jobs" ("task_id") WHERE "task_id" IS NOT NULL;
CREATE INDEX "job_history_task_idx" ON "job_history" ("task_id") WHERE "task_id" IS NOT NULL;
