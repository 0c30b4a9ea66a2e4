CREATE OR REPLACE FUNCTION zonestats_internal.require_citus(p_what text)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- Raises a clear error when this database is not a Citus coordinator.
    IF NOT zonestats_internal.citus_enabled() THEN
        RAISE EXCEPTION '% needs Citus: this database has no citus extension', p_what
            USING HINT = 'Shard placement is Citus'' job. On one PostgreSQL server there is nothing to rebalance; see the README, section Citus, to run zonestats on a Citus cluster.';
    END IF;
END
$$;
COMMENT ON FUNCTION zonestats_internal.require_citus(text) IS 'raises an error naming the caller when the database is not a Citus coordinator';
