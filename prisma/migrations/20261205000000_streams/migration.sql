-- Exact live streams (issue 20). Every state change of a job is appended to
-- stream_events in the statement that makes it, and every log line carries the
-- transaction id that wrote it. A stream reads a position (xid, id) only once
-- every transaction below it has ended (pg_snapshot_xmin), so nothing can appear
-- behind a client's position later: each event is delivered once, in order.
-- Stream tickets are short-lived credentials for opening an event stream, so the
-- long-lived API token never travels in a URL.
-- Append-only: never edit once applied; add a new migration.
CREATE TABLE "stream_events" (
    "xid" XID8 NOT NULL DEFAULT pg_current_xact_id(),
    "id" BIGSERIAL NOT NULL,
    "at" TIMESTAMPTZ(6) NOT NULL DEFAULT clock_timestamp(),
    "job_id" TEXT NOT NULL,
    "tenant" TEXT,
    "name" TEXT NOT NULL,
    "status" TEXT NOT NULL,
    "attempt" INTEGER,

    CONSTRAINT "stream_events_pkey" PRIMARY KEY ("id")
);
CREATE INDEX "stream_events_position_idx" ON "stream_events" ("xid", "id");
CREATE INDEX "stream_events_job_idx" ON "stream_events" ("job_id");

ALTER TABLE "job_logs" ADD COLUMN "xid" XID8 NOT NULL DEFAULT pg_current_xact_id();
CREATE INDEX "job_logs_position_idx" ON "job_logs" ("xid", "id");

CREATE TABLE "stream_tickets" (
    "hash" TEXT NOT NULL,
    "tenant" TEXT,
    "expires_at" TIMESTAMPTZ(6) NOT NULL,
    "created_at" TIMESTAMPTZ(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "stream_tickets_pkey" PRIMARY KEY ("hash")
);
CREATE INDEX "stream_tickets_expires_idx" ON "stream_tickets" ("expires_at");
