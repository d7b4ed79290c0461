-- Skein core schema: live jobs, the dependency edges between them, and the
-- history archive. Migrations are append-only: never edit this file once it has
-- been applied anywhere; add a new migration instead.

-- Live jobs: pending or running. A job that finishes (completed, finally failed,
-- cancelled) is moved to job_history in the same transaction that finishes it.
CREATE TABLE "jobs" (
    "id" TEXT NOT NULL,
    "job_type" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "description" TEXT,
    "payload" JSONB NOT NULL DEFAULT '{}',
    "dependencies" JSONB NOT NULL DEFAULT '[]',
    "max_retries" INTEGER NOT NULL DEFAULT 3,
    "retry_count" INTEGER NOT NULL DEFAULT 0,
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "status" TEXT NOT NULL DEFAULT 'pending',
    "error_message" TEXT,
    "result" JSONB,
    "priority" INTEGER NOT NULL DEFAULT 0,
    "run_at" TIMESTAMPTZ(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    -- Dependencies that have not completed yet. Decremented under the child's
    -- row lock when a dependency completes; the job is ready at 0.
    "pending_dependencies" INTEGER NOT NULL DEFAULT 0,
    -- Room for flow control (queues, tenants, rate limits, concurrency keys, tags).
    "queue" TEXT NOT NULL DEFAULT 'default',
    "tenant" TEXT,
    "rate_limit_key" TEXT,
    "rate_limit_cost" INTEGER NOT NULL DEFAULT 1,
    "concurrency_key" TEXT,
    "tags" TEXT[] NOT NULL DEFAULT ARRAY[]::TEXT[],
    "timeout_seconds" INTEGER,
    -- Room for workflows (delegation) and tasks.
    "parent_id" TEXT,
    "task_id" TEXT,
    -- The lease of the worker running the job.
    "locked_by" TEXT,
    "lease_token" UUID,
    "lease_expires_at" TIMESTAMPTZ(6),
    "started_at" TIMESTAMPTZ(6),
    "completed_at" TIMESTAMPTZ(6),
    "created_at" TIMESTAMPTZ(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "jobs_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "jobs_status_check" CHECK ("status" IN ('pending', 'running', 'completed', 'failed', 'cancelled')),
    CONSTRAINT "jobs_pending_dependencies_check" CHECK ("pending_dependencies" >= 0),
    CONSTRAINT "jobs_max_retries_check" CHECK ("max_retries" >= 0),
    CONSTRAINT "jobs_running_lease_check" CHECK ("status" <> 'running' OR "lease_token" IS NOT NULL)
);

-- The readiness index: exactly the rows a worker may claim, in claim order.
-- Blocked jobs (pending_dependencies > 0) and running jobs are not in it, so
-- finding ready work never scans the backlog.
CREATE INDEX "jobs_ready_idx" ON "jobs" ("priority" DESC, "run_at", "id")
    WHERE "status" = 'pending' AND "pending_dependencies" = 0;

-- Running jobs by lease expiry, for reclaiming the jobs of dead workers.
CREATE INDEX "jobs_lease_expiry_idx" ON "jobs" ("lease_expires_at")
    WHERE "status" = 'running';

-- Edges of the dependency graph: job_id waits on depends_on_id. An edge lives as
-- long as its waiting job is live; depends_on_id may already be archived.
CREATE TABLE "job_dependencies" (
    "job_id" TEXT NOT NULL,
    "depends_on_id" TEXT NOT NULL,
    "on_failure" TEXT NOT NULL DEFAULT 'cancel',

    CONSTRAINT "job_dependencies_pkey" PRIMARY KEY ("job_id", "depends_on_id"),
    CONSTRAINT "job_dependencies_job_id_fkey" FOREIGN KEY ("job_id") REFERENCES "jobs"("id") ON DELETE CASCADE,
    CONSTRAINT "job_dependencies_on_failure_check" CHECK ("on_failure" IN ('cancel', 'ignore', 'fail'))
);

-- A job's dependents in O(dependents).
CREATE INDEX "job_dependencies_depends_on_idx" ON "job_dependencies" ("depends_on_id", "job_id");

-- Finished jobs, kept for auditing until pruned. One row per job id.
CREATE TABLE "job_history" (
    "id" BIGSERIAL NOT NULL,
    "job_id" TEXT NOT NULL,
    "job_type" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "description" TEXT,
    "payload" JSONB NOT NULL DEFAULT '{}',
    "dependencies" JSONB NOT NULL DEFAULT '[]',
    "max_retries" INTEGER NOT NULL,
    "retry_count" INTEGER NOT NULL,
    "attempts" INTEGER NOT NULL,
    "status" TEXT NOT NULL,
    "error_message" TEXT,
    "result" JSONB,
    "priority" INTEGER NOT NULL,
    "run_at" TIMESTAMPTZ(6) NOT NULL,
    "queue" TEXT NOT NULL,
    "tenant" TEXT,
    "rate_limit_key" TEXT,
    "rate_limit_cost" INTEGER NOT NULL,
    "concurrency_key" TEXT,
    "tags" TEXT[] NOT NULL DEFAULT ARRAY[]::TEXT[],
    "timeout_seconds" INTEGER,
    "parent_id" TEXT,
    "task_id" TEXT,
    "locked_by" TEXT,
    "duration_seconds" DOUBLE PRECISION,
    "started_at" TIMESTAMPTZ(6),
    "completed_at" TIMESTAMPTZ(6) NOT NULL,
    "created_at" TIMESTAMPTZ(6) NOT NULL,
    "updated_at" TIMESTAMPTZ(6) NOT NULL,
    "archived_at" TIMESTAMPTZ(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "job_history_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "job_history_status_check" CHECK ("status" IN ('completed', 'failed', 'cancelled'))
);

CREATE UNIQUE INDEX "job_history_job_id_key" ON "job_history" ("job_id");
CREATE INDEX "job_history_completed_at_idx" ON "job_history" ("completed_at" DESC);
CREATE INDEX "job_history_status_completed_at_idx" ON "job_history" ("status", "completed_at" DESC);
