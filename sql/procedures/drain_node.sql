CREATE OR REPLACE PROCEDURE zonestats.drain_node(p_host text, p_port int DEFAULT 5432)
LANGUAGE plpgsql
AS $$
DECLARE
    v_mode text;
BEGIN
    -- Moves every shard off a Citus worker (it gets no new ones), then
    -- removes it from the cluster. Blocks until done; loading goes on
    -- during the moves when wal_level = logical. (A procedure that COMMITs
    -- cannot SET search_path: every name here is qualified.)
    v_mode := zonestats_internal.begin_node_change('zonestats.drain_node');
    RAISE NOTICE 'zonestats.drain_node: moving the shards off %:% (shard transfer mode %)', p_host, p_port, v_mode;
    PERFORM pg_catalog.citus_drain_node(p_host, p_port, shard_transfer_mode => v_mode::citus.shard_transfer_mode);
    COMMIT;
    PERFORM pg_catalog.citus_remove_node(p_host, p_port);
    COMMIT;
    RAISE NOTICE 'zonestats.drain_node: %:% drained and removed', p_host, p_port;
END
$$;
COMMENT ON PROCEDURE zonestats.drain_node(text, int) IS
    'moves every shard off a Citus worker, then removes it from the cluster';
