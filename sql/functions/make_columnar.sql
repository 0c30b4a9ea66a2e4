CREATE OR REPLACE FUNCTION zonestats_internal.make_columnar(p_partition regclass)
RETURNS boolean
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET lock_timeout = '5s'
AS $$
DECLARE
    s       zonestats.settings;
    v_to    timestamptz;
    v_am    name;
    v_done  bigint;
    v_pending boolean;
BEGIN
    -- Rewrites one raw_events partition as columnar (citus_columnar) when it
    -- ended raw_columnar_after ago and every row in it is rolled up; returns
    -- whether it did. Not when raw_events keeps a parent index (Citus shards
    -- with replicas: no DDL on single partitions there). Runs as the tables'
    -- owner (SECURITY DEFINER), so it checks everything itself.
    SELECT * INTO s FROM zonestats.settings;
    SELECT tp.to_value, a.amname INTO v_to, v_am
    FROM zonestats_internal.time_partitions tp
    JOIN pg_class c ON c.oid = tp.partition
    JOIN pg_am a ON a.oid = c.relam
    WHERE tp.partition = p_partition AND tp.parent_table = 'zonestats_internal.raw_events'::regclass;
    IF v_to IS NULL OR v_am = 'columnar' OR s.raw_columnar_after IS NULL OR v_to > now() - s.raw_columnar_after
       OR NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus_columnar')
       OR EXISTS (SELECT 1 FROM pg_index WHERE indrelid = 'zonestats_internal.raw_events'::regclass) THEN
        RETURN false;
    END IF;
    SELECT r.last_event_id INTO v_done FROM zonestats_internal.rollup_state r;
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM %s WHERE event_id > $1)', p_partition) INTO v_pending USING v_done;
    IF v_pending THEN
        RETURN false;
    END IF;
    BEGIN
        PERFORM alter_table_set_access_method(p_partition, 'columnar');
    EXCEPTION WHEN lock_not_available OR deadlock_detected THEN
        -- Busy (on Citus the rewrite can deadlock with a COPY across the
        -- nodes, and the deadlock detector may cancel it): next time.
        RAISE WARNING 'zonestats.expire: % not made columnar: busy, will retry next time', p_partition
            USING DETAIL = SQLERRM;
        RETURN false;
    END;
    RETURN true;
END
$$;
COMMENT ON FUNCTION zonestats_internal.make_columnar(regclass) IS
    'rewrites an old, fully rolled-up raw_events partition as columnar (citus_columnar); called by expire()';
REVOKE ALL ON FUNCTION zonestats_internal.make_columnar(regclass) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION zonestats_internal.make_columnar(regclass) TO zonestats_admin;
