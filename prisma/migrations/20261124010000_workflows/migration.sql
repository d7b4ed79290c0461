-- Workflows: per-edge failure policies that survive archiving, delegation
-- (parent/child), recurring schedules, job logs and events.
-- Append-only: never edit once applied; add a new migration.

-- Edges now outlive the waiting job's archiving, so that a retried job can
-- find and restore its cancelled descendants (and the DLQ can replay a
-- subtree). They are deleted when history is pruned.
ALTER TABLE "job_dependencies" DROP CONSTRAINT "job_dependencies_job_id_fkey";

-- When the job became ready (its last dependency finished); NULL for a job
-- that was ready when created (its created_at) or never became ready.
ALTER TABLE "jobs" ADD COLUMN "ready_at" TIMESTAMPTZ(6);
ALTER TABLE "job_history" ADD COLUMN "ready_at" TIMESTAMPTZ(6);

-- Children of a job (delegation), live and archived.
CREATE INDEX "jobs_parent_idx" ON "jobs" ("parent_id") WHERE "parent_id" IS NOT NULL;
CREATE INDEX "job_history_parent_idx" ON "job_history" ("parent_id") WHERE "parent_id" IS NOT NULL;

-- State changes that a job's row cannot tell afterwards (an attempt that was
-- retried, a lease lost, a job released on shutdown or deferred by a rate
-- limit). Created, ready, started, completed, failed and cancelled come from
-- the job's own timestamps; `JobManager.getJobEvents` merges both.
CREATE TABLE "job_events" (
    "id" BIGSERIAL NOT NULL,
    "job_id" TEXT NOT NULL,
    "at" TIMESTAMPTZ(6) NOT NULL DEFAULT clock_timestamp(),
    "event" TEXT NOT NULL,
    "worker_id" TEXT,
    "attempt" INTEGER,
    "detail" JSONB,

    CONSTRAINT "job_events_pkey" PRIMARY KEY ("id")
);
CREATE INDEX "job_events_job_idx" ON "job_events" ("job_id", "id");

-- Lines an executor wrote with ctx.log (capped per job).
CREATE TABLE "job_logs" (
    "id" BIGSERIAL NOT NULL,
    "job_id" TEXT NOT NULL,
    "attempt" INTEGER NOT NULL,
    "at" TIMESTAMPTZ(6) NOT NULL,
    "level" TEXT NOT NULL,
    "message" TEXT NOT NULL,
    "fields" JSONB,

    CONSTRAINT "job_logs_pkey" PRIMARY KEY ("id")
);
CREATE INDEX "job_logs_job_idx" ON "job_logs" ("job_id", "id");

-- Recurring schedules: a cron expression (in a timezone) or an interval.
CREATE TABLE "schedules" (
    "id" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "cron" TEXT,
    "interval_seconds" INTEGER,
    "timezone" TEXT NOT NULL DEFAULT 'UTC',
    "job_template" JSONB NOT NULL,
    "catch_up" TEXT NOT NULL DEFAULT 'once',
    "paused" BOOLEAN NOT NULL DEFAULT false,
    "next_run_at" TIMESTAMPTZ(6) NOT NULL,
    "last_run_at" TIMESTAMPTZ(6),
    "last_job_id" TEXT,
    "created_at" TIMESTAMPTZ(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "schedules_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "schedules_kind_check" CHECK (("cron" IS NULL) <> ("interval_seconds" IS NULL)),
    CONSTRAINT "schedules_interval_check" CHECK ("interval_seconds" IS NULL OR "interval_seconds" >= 1),
    CONSTRAINT "schedules_catch_up_check" CHECK ("catch_up" IN ('once', 'skip'))
);
CREATE UNIQUE INDEX "schedules_name_key" ON "schedules" ("name");
CREATE INDEX "schedules_due_idx" ON "schedules" ("next_run_at") WHERE NOT "paused";

-- One row per schedule and tick: the unique key that makes each tick enqueue
-- exactly one job however many workers run the scheduler.
CREATE TABLE "schedule_ticks" (
    "schedule_id" TEXT NOT NULL,
    "tick_at" TIMESTAMPTZ(6) NOT NULL,
    "job_id" TEXT NOT NULL,

    CONSTRAINT "schedule_ticks_pkey" PRIMARY KEY ("schedule_id", "tick_at")
);
