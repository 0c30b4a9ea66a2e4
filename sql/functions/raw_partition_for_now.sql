CREATE OR REPLACE FUNCTION zonestats_internal.raw_partition_for_now()
RETURNS text
LANGUAGE plpgsql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_fmt   text;
    v_part  regclass;
    v_bound text;
BEGIN
    -- The raw partition that a row loaded now lands in (loaded_at defaults
    -- to now(), the start of the caller's transaction), schema-qualified
    -- and quoted for a COPY statement; NULL when there is none (the row
    -- would go to the default partition), when it is not named the way
    -- create_time_partitions names partitions, or on Citus (the
    -- coordinator sends rows to the shards of raw_events). The loader calls
    -- it in each batch's transaction and COPYs straight into that
    -- partition: PostgreSQL then skips routing every row through the
    -- parent, ~15 % of a COPY's server time. NULL costs only that: the
    -- COPY then goes through raw_events. The partition is looked up by its
    -- name for each unit (hour, day, month), so the cost does not grow with
    -- the number of partitions, and its bounds are checked.
    IF zonestats_internal.citus_enabled() THEN
        RETURN NULL;
    END IF;
    FOREACH v_fmt IN ARRAY ARRAY['YYYYMMDD"_"HH24', 'YYYYMMDD', 'YYYYMM'] LOOP
        v_part := to_regclass('zonestats_internal.raw_events_p' || to_char(now() AT TIME ZONE 'UTC', v_fmt));
        CONTINUE WHEN v_part IS NULL;
        SELECT pg_get_expr(c.relpartbound, c.oid) INTO v_bound
        FROM pg_class c JOIN pg_inherits i ON i.inhrelid = c.oid
        WHERE c.oid = v_part AND i.inhparent = 'zonestats_internal.raw_events'::regclass;
        IF (regexp_match(v_bound, 'FROM \(''([^'']+)''\)'))[1]::timestamptz <= now()
           AND now() < (regexp_match(v_bound, 'TO \(''([^'']+)''\)'))[1]::timestamptz THEN
            RETURN format('%I.%I', 'zonestats_internal', (SELECT relname FROM pg_class WHERE oid = v_part));
        END IF;
    END LOOP;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION zonestats_internal.raw_partition_for_now() IS
    'the raw_events partition that rows loaded in this transaction land in, for a COPY straight into it (NULL: COPY into raw_events)';
REVOKE ALL ON FUNCTION zonestats_internal.raw_partition_for_now() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION zonestats_internal.raw_partition_for_now() TO zonestats_loader;
