-- Autovacuum settings for the jobs table.
-- Append-only: never edit once applied; add a new migration.
--
-- Every claimed job leaves its pending version's entry in jobs_ready_idx, at
-- the head of the range every claim scans, until a vacuum removes it. With
-- PostgreSQL's defaults autovacuum waits for 50 dead rows plus 20% of the
-- table (200,000 with a million jobs pending), and a vacuum that finds dead
-- rows on fewer than 2% of the table's pages skips the indexes altogether, so
-- on a large table the head keeps growing and every claim walks it.
-- Here autovacuum starts at 1,000 dead rows plus 1% of the table (sooner
-- than the defaults from about 5,000 rows up, a little later below) and
-- always cleans the indexes. Measured in docs/BENCHMARKS.md ("A backlog under
-- steady traffic").
ALTER TABLE "jobs" SET (
    autovacuum_vacuum_scale_factor = 0.01,
    autovacuum_vacuum_threshold = 1000,
    vacuum_index_cleanup = on
);
