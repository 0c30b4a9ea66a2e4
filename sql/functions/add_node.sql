CREATE OR REPLACE FUNCTION zonestats.add_node(p_host text, p_port int DEFAULT 5432)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_node int;
BEGIN
    -- Adds a Citus worker and starts a background rebalance that moves
    -- shards onto it; returns the rebalance job id (NULL when there is
    -- nothing to move). Follow it with zonestats.rebalance_status().
    -- The node must run the same PostgreSQL with citus, hll and the
    -- zonestats C library installed, and have this database with the
    -- citus extension created in it.
    PERFORM zonestats_internal.begin_node_change('zonestats.add_node');
    v_node := citus_add_node(p_host, p_port);
    RAISE NOTICE 'zonestats.add_node: %:% is node %', p_host, p_port, v_node;
    RETURN zonestats.rebalance();
END
$$;
COMMENT ON FUNCTION zonestats.add_node(text, int) IS
    'adds a Citus worker and starts a background rebalance onto it (non-blocking moves when wal_level = logical); returns the job id';
