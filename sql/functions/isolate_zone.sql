CREATE OR REPLACE FUNCTION zonestats.isolate_zone(p_zone_id bigint)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_mode  text;
    v_shard bigint;
BEGIN
    -- Gives one (huge) zone shards of its own: splits the shard group that
    -- holds it so that the zone alone is in one shard of every co-located
    -- table. Returns the zone's new raw_events shard id. The new shards stay
    -- on the same worker: zonestats.rebalance() or citus_move_shard_placement
    -- moves them.
    v_mode := zonestats_internal.begin_node_change('zonestats.isolate_zone');
    v_shard := isolate_tenant_to_new_shard('zonestats_internal.raw_events', p_zone_id, 'CASCADE',
                                           shard_transfer_mode => v_mode::citus.shard_transfer_mode);
    RAISE NOTICE 'zonestats.isolate_zone: zone % has shard % (shard transfer mode %)', p_zone_id, v_shard, v_mode;
    RETURN v_shard;
END
$$;
COMMENT ON FUNCTION zonestats.isolate_zone(bigint) IS
    'splits the shards holding one zone so that it has shards of its own (co-located tables too); returns its raw_events shard id';
