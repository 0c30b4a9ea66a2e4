CREATE OR REPLACE FUNCTION zonestats.rebalance()
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_mode text;
    v_job  bigint;
BEGIN
    -- Starts a background rebalance of every co-located shard group over
    -- the workers, moving shards with zonestats.shard_transfer_mode();
    -- returns the job id, NULL when the shards are already balanced.
    v_mode := zonestats_internal.begin_node_change('zonestats.rebalance');
    v_job := citus_rebalance_start(shard_transfer_mode => v_mode::citus.shard_transfer_mode);
    IF v_job IS NULL THEN
        RAISE NOTICE 'zonestats.rebalance: shards are balanced; nothing to move';
    ELSE
        RAISE NOTICE 'zonestats.rebalance: job % started, shard transfer mode %', v_job, v_mode
            USING HINT = CASE v_mode WHEN 'force_logical' THEN 'Non-blocking: loading goes on during the moves.'
                          ELSE 'block_writes: writes to a shard wait while it moves; set wal_level = logical on every node for non-blocking moves.' END;
    END IF;
    RETURN v_job;
END
$$;
COMMENT ON FUNCTION zonestats.rebalance() IS
    'starts a background Citus rebalance (non-blocking moves when wal_level = logical); returns the job id or NULL';
