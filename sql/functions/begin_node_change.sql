CREATE OR REPLACE FUNCTION zonestats_internal.begin_node_change(p_what text)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- The start of every node or shard change: needs Citus, takes the
    -- node-change lock for the transaction (one change at a time), and
    -- returns the shard transfer mode to use.
    PERFORM zonestats_internal.require_citus(p_what);
    IF NOT pg_try_advisory_xact_lock(7236003) THEN
        RAISE EXCEPTION '%: another node change is in progress', p_what;
    END IF;
    RETURN zonestats.shard_transfer_mode();
END
$$;
COMMENT ON FUNCTION zonestats_internal.begin_node_change(text) IS
    'checks for Citus, takes the node-change advisory lock and returns the shard transfer mode';
