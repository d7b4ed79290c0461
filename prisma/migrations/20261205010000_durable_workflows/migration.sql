-- Durable workflows (issue 21).
-- Children are keyed within their parent (delegation_key), so a retried or
-- resumed parent re-attaches to the children it made; a detached child
-- outlives its parent's failure or cancellation. Jobs made by a schedule
-- record its name and the tick (scheduled_for). job_steps holds the results of
-- ctx.step and the wake times of ctx.sleep, kept with the job's history.
-- A parent waiting for children is parked: pending, with one 'wait' edge per
-- unfinished child (decremented like an 'ignore' edge when the child ends,
-- however it ends), and wait_until, the deadline at which the children still
-- unfinished are cancelled.
-- Append-only: never edit once applied; add a new migration.
ALTER TABLE "jobs"
    ADD COLUMN "delegation_key" TEXT,
    ADD COLUMN "detached" BOOLEAN NOT NULL DEFAULT false,
    ADD COLUMN "schedule_name" TEXT,
    ADD COLUMN "scheduled_for" TIMESTAMPTZ(6),
    ADD COLUMN "wait_until" TIMESTAMPTZ(6);

ALTER TABLE "job_history"
    ADD COLUMN "delegation_key" TEXT,
    ADD COLUMN "detached" BOOLEAN NOT NULL DEFAULT false,
    ADD COLUMN "schedule_name" TEXT,
    ADD COLUMN "scheduled_for" TIMESTAMPTZ(6);

CREATE UNIQUE INDEX "jobs_delegation_key_key" ON "jobs" ("parent_id", "delegation_key") WHERE "delegation_key" IS NOT NULL;
CREATE INDEX "job_history_delegation_idx" ON "job_history" ("parent_id", "delegation_key") WHERE "delegation_key" IS NOT NULL;
CREATE INDEX "jobs_wait_until_idx" ON "jobs" ("wait_until") WHERE "wait_until" IS NOT NULL;
CREATE INDEX "jobs_schedule_idx" ON "jobs" ("schedule_name", "scheduled_for") WHERE "schedule_name" IS NOT NULL;
CREATE INDEX "job_history_schedule_idx" ON "job_history" ("schedule_name", "scheduled_for") WHERE "schedule_name" IS NOT NULL;

ALTER TABLE "job_dependencies" DROP CONSTRAINT "job_dependencies_on_failure_check";
ALTER TABLE "job_dependencies" ADD CONSTRAINT "job_dependencies_on_failure_check" CHECK ("on_failure" IN ('cancel', 'ignore', 'fail', 'wait'));

CREATE TABLE "job_steps" (
    "job_id" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "attempt" INTEGER NOT NULL,
    "result" JSONB,
    "wake_at" TIMESTAMPTZ(6),
    "created_at" TIMESTAMPTZ(6) NOT NULL DEFAULT clock_timestamp(),

    CONSTRAINT "job_steps_pkey" PRIMARY KEY ("job_id", "name")
);
