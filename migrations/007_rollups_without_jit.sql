-- Rollups run without JIT compilation. A rollup chunk plans its statements
-- once and runs them once; with the planner's default thresholds, a chunk
-- of a few hundred thousand events or more was JIT-compiled in the leader
-- and in each parallel worker (about 200 ms per process per chunk on 2
-- cores), which the run never won back. On Citus the setting reaches the
-- shard queries on the workers too (SET LOCAL, propagated).

{{ template "sql/functions/rollup_events.sql" . }}
