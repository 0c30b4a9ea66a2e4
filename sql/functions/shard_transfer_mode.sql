CREATE OR REPLACE FUNCTION zonestats.shard_transfer_mode()
RETURNS text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_nodes int;
    v_logical int;
BEGIN
    -- How zonestats moves shards: 'force_logical' (non-blocking: writes go
    -- on during a move, by logical replication) when every node has
    -- wal_level = logical, else 'block_writes' (writes to a shard wait
    -- while it is copied), and always for shard replication factor > 1.
    PERFORM zonestats_internal.require_citus('zonestats.shard_transfer_mode');
    SELECT count(*), count(*) FILTER (WHERE r.success AND r.result = 'logical')
      INTO v_nodes, v_logical
      FROM run_command_on_workers('SHOW wal_level') r;
    -- Shards replicated by statement (replication factor > 1) move by copy.
    IF EXISTS (SELECT 1 FROM pg_dist_partition WHERE logicalrelid = 'zonestats_internal.raw_events'::regclass AND repmodel = 'c') THEN
        RETURN 'block_writes';
    END IF;
    IF current_setting('wal_level') = 'logical' AND v_logical = v_nodes THEN
        RETURN 'force_logical';
    END IF;
    RETURN 'block_writes';
END
$$;
COMMENT ON FUNCTION zonestats.shard_transfer_mode() IS
    'force_logical (non-blocking shard moves) when every Citus node has wal_level = logical, else block_writes';
