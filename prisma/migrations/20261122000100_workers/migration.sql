-- Worker registry and the maintenance gate.

-- One row per running worker process. A worker inserts its row on start,
-- refreshes last_heartbeat_at with every heartbeat and deletes the row when it
-- stops; a row whose heartbeat is older than the stale timeout belongs to a
-- worker that died (its jobs are reclaimed when their leases expire).
CREATE TABLE "workers" (
    "id" TEXT NOT NULL,
    "host" TEXT NOT NULL,
    "pid" INTEGER NOT NULL,
    "started_at" TIMESTAMPTZ(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "last_heartbeat_at" TIMESTAMPTZ(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "concurrency" INTEGER NOT NULL,
    "executors" JSONB NOT NULL DEFAULT '[]',
    "status" TEXT NOT NULL DEFAULT 'running',

    CONSTRAINT "workers_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "workers_status_check" CHECK ("status" IN ('running', 'stopping'))
);

-- When each periodic maintenance task last ran, across all workers. A worker
-- runs a task only if it wins the conditional UPDATE of its row, so ten
-- workers do not all prune at once.
CREATE TABLE "maintenance_runs" (
    "task" TEXT NOT NULL,
    "last_run_at" TIMESTAMPTZ(6) NOT NULL DEFAULT '-infinity',

    CONSTRAINT "maintenance_runs_pkey" PRIMARY KEY ("task")
);

INSERT INTO "maintenance_runs" ("task") VALUES ('prune_history');
