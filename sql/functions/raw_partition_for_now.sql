CREATE OR REPLACE FUNCTION zonestats_internal.raw_partition_for_now()
RETURNS text
LANGUAGE plpgsql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_fmt  text;
    v_name text;
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
        v_name := 'raw_events_p' || to_char(now() AT TIME ZONE 'UTC', v_fmt);
        PERFORM FROM zonestats_internal.time_partitions p
        WHERE p.partition = to_regclass(format('zonestats_internal.%I', v_name))
          AND p.parent_table = 'zonestats_internal.raw_events'::regclass
          AND p.from_value <= now() AND now() < p.to_value;
        IF FOUND THEN
            RETURN format('zonestats_internal.%I', v_name);
        END IF;
    END LOOP;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION zonestats_internal.raw_partition_for_now() IS
    'the raw_events partition that rows loaded in this transaction land in, for a COPY straight into it (NULL: COPY into raw_events)';
REVOKE ALL ON FUNCTION zonestats_internal.raw_partition_for_now() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION zonestats_internal.raw_partition_for_now() TO zonestats_loader;
