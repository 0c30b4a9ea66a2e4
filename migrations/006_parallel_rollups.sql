-- Rollups on one PostgreSQL server aggregate the raw events in parallel.
-- PostgreSQL runs no part of an INSERT … SELECT in parallel, but it does run
-- the SELECT of a CREATE TABLE … AS: each rollup chunk now builds its
-- minute delta that way, into a temporary table, with two parallel workers
-- sorting and aggregating half of the window each (on Citus the delta stays
-- the distributed table, filled shard by shard on the workers as before).
-- With the sort split over two workers, a chunk of 2,000,000 events sorts
-- in memory: the default chunk doubles (kept where it was changed).

{{ template "sql/functions/delta_query.sql" . }}
{{ template "sql/functions/merge_delta.sql" . }}
{{ template "sql/functions/rollup_events.sql" . }}

ALTER TABLE zonestats.settings ALTER COLUMN rollup_chunk_events SET DEFAULT 2000000;
UPDATE zonestats.settings SET rollup_chunk_events = 2000000 WHERE rollup_chunk_events = 1000000;
