CREATE OR REPLACE FUNCTION zonestats.schedule_jobs(p_rollups text DEFAULT '* * * * *', p_expire text DEFAULT '7 * * * *')
RETURNS TABLE (jobname text, schedule text, command text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- Schedules the maintenance with pg_cron in this database: run_rollups
    -- (default every minute) and expire (default hourly), as the jobs
    -- 'zonestats-rollups' and 'zonestats-expire' (calling it again updates
    -- them). Returns the scheduled jobs.
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_cron') THEN
        RAISE EXCEPTION 'zonestats.schedule_jobs needs the pg_cron extension in this database'
            USING HINT = 'Set shared_preload_libraries = ''pg_cron'' (after citus on Citus) and cron.database_name to this database, restart, then CREATE EXTENSION pg_cron; on a Citus coordinator run SET citus.enable_ddl_propagation TO off first. Without pg_cron, call `zonestats rollup` and `zonestats expire` from cron.';
    END IF;
    PERFORM cron.schedule('zonestats-rollups', p_rollups, 'CALL zonestats.run_rollups()');
    PERFORM cron.schedule('zonestats-expire', p_expire, 'CALL zonestats.expire()');
    RETURN QUERY SELECT j.jobname::text, j.schedule::text, j.command::text
                 FROM cron.job j WHERE j.jobname IN ('zonestats-rollups', 'zonestats-expire') ORDER BY 1;
END
$$;
COMMENT ON FUNCTION zonestats.schedule_jobs(text, text) IS
    'schedules run_rollups (every minute) and expire (hourly) with pg_cron; cron syntax; idempotent';
