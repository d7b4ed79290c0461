-- Operator controls (issue 24). A paused queue's jobs are claimed by no
-- claim path until it is resumed (every claim reads paused_queues once per
-- statement). An operator asks a worker to go quiet, drain or resume, or to
-- run a different number of jobs at once, through requested_state and
-- requested_concurrency; the worker applies the request (told by NOTIFY,
-- and reading it back at every heartbeat) and reports its state in status.
-- A worker may serve only some tenants (tenants; null: every tenant).
-- Append-only: never edit once applied; add a new migration.
CREATE TABLE "paused_queues" (
    "name" TEXT NOT NULL,
    "paused_at" TIMESTAMPTZ(6) NOT NULL DEFAULT now(),

    CONSTRAINT "paused_queues_pkey" PRIMARY KEY ("name")
);

ALTER TABLE "workers"
    ADD COLUMN "tenants" TEXT[],
    ADD COLUMN "requested_state" TEXT,
    ADD COLUMN "requested_concurrency" INTEGER;

ALTER TABLE "workers" DROP CONSTRAINT "workers_status_check";
ALTER TABLE "workers" ADD CONSTRAINT "workers_status_check" CHECK ("status" IN ('running', 'quiet', 'draining', 'stopping'));
ALTER TABLE "workers" ADD CONSTRAINT "workers_requested_state_check" CHECK ("requested_state" IS NULL OR "requested_state" IN ('active', 'quiet', 'drain'));
ALTER TABLE "workers" ADD CONSTRAINT "workers_requested_concurrency_check" CHECK ("requested_concurrency" IS NULL OR "requested_concurrency" BETWEEN 1 AND 10000);
