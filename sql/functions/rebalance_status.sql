CREATE OR REPLACE FUNCTION zonestats.rebalance_status()
RETURNS TABLE (job_id bigint, state text, started_at timestamptz, finished_at timestamptz,
               tasks_done int, tasks_total int, details jsonb)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- The rebalance jobs of this cluster, newest first: state (scheduled,
    -- running, finished, failed, cancelled …), tasks done of total, and
    -- Citus' details.
    PERFORM zonestats_internal.require_citus('zonestats.rebalance_status');
    RETURN QUERY
        SELECT j.job_id, j.state::text, j.started_at, j.finished_at,
               coalesce((SELECT count(*) FROM pg_dist_background_task t
                         WHERE t.job_id = j.job_id AND t.status = 'done'), 0)::int,
               coalesce((SELECT count(*) FROM pg_dist_background_task t WHERE t.job_id = j.job_id), 0)::int,
               to_jsonb(j)
        FROM pg_dist_background_job j
        WHERE j.job_type = 'rebalance'
        ORDER BY j.job_id DESC;
END
$$;
COMMENT ON FUNCTION zonestats.rebalance_status() IS 'Citus rebalance jobs, newest first, with their progress';
