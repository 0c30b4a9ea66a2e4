CREATE OR REPLACE FUNCTION zonestats_internal.maintain_partitions()
RETURNS int
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET timezone = 'UTC'
AS $$
DECLARE
    s zonestats.settings;
    v_now timestamptz := clock_timestamp();
    v_created int := 0;
BEGIN
    -- Makes sure partitions exist from the start of each level's retention
    -- (raw: from now, it is partitioned by load time) to partition_premake
    -- partitions ahead. Runs as the owner of the tables (SECURITY DEFINER:
    -- creating partitions takes ownership); it takes no arguments.
    SELECT * INTO s FROM zonestats.settings;
    v_created := v_created + zonestats_internal.create_time_partitions('zonestats_internal.raw_events', s.raw_partition_unit,
        v_now, v_now + s.partition_premake * ('1 ' || s.raw_partition_unit)::interval);
    v_created := v_created + zonestats_internal.create_time_partitions('zonestats.rollup_1m', 'day',
        v_now - s.minute_retention, v_now + s.partition_premake * interval '1 day');
    v_created := v_created + zonestats_internal.create_time_partitions('zonestats.rollup_1h', 'month',
        v_now - s.hour_retention, v_now + s.partition_premake * interval '1 month');
    RETURN v_created;
END
$$;
COMMENT ON FUNCTION zonestats_internal.maintain_partitions() IS
    'creates the partitions zonestats needs now and partition_premake ahead; called by run_rollups and expire';
REVOKE ALL ON FUNCTION zonestats_internal.maintain_partitions() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION zonestats_internal.maintain_partitions() TO zonestats_admin;
