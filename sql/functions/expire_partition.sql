CREATE OR REPLACE FUNCTION zonestats_internal.expire_partition(p_partition regclass)
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET lock_timeout = '5s'
AS $$
DECLARE
    s        zonestats.settings;
    v_parent regclass;
    v_to     timestamptz;
    v_retention interval;
    v_done   bigint;
    v_pending boolean;
BEGIN
    -- Drops one time partition of raw_events, rollup_1m or rollup_1h if it
    -- is past its retention (settings) and, for raw events, every row in it
    -- is rolled up. Returns 'dropped'; 'pending' (raw rows not rolled up
    -- yet) or 'busy' (no lock within lock_timeout, or a deadlock), both
    -- with a WARNING;
    -- 'kept' when it is not expired or not such a partition. Runs as the
    -- tables' owner (SECURITY DEFINER: DROP takes ownership), so it checks
    -- everything itself: the caller can drop nothing else.
    SELECT * INTO s FROM zonestats.settings;
    SELECT tp.parent_table, tp.to_value INTO v_parent, v_to
    FROM zonestats_internal.time_partitions tp
    WHERE tp.partition = p_partition;
    v_retention := CASE v_parent WHEN 'zonestats_internal.raw_events'::regclass THEN s.raw_retention
                                 WHEN 'zonestats.rollup_1m'::regclass THEN s.minute_retention
                                 WHEN 'zonestats.rollup_1h'::regclass THEN s.hour_retention END;
    IF v_parent IS NULL OR v_retention IS NULL OR v_to > now() - v_retention THEN
        RETURN 'kept';
    END IF;
    BEGIN
        -- DROP locks the parent too; take both now, under lock_timeout.
        EXECUTE format('LOCK TABLE ONLY %s, ONLY %s IN ACCESS EXCLUSIVE MODE', v_parent, p_partition);
        IF v_parent = 'zonestats_internal.raw_events'::regclass THEN
            -- Only when every row is rolled up (checked under the lock, so
            -- no writer can add one meanwhile).
            SELECT r.last_event_id INTO v_done FROM zonestats_internal.rollup_state r;
            EXECUTE format('SELECT EXISTS (SELECT 1 FROM %s WHERE event_id > $1)', p_partition)
                INTO v_pending USING v_done;
            IF v_pending THEN
                RAISE WARNING 'zonestats.expire: % kept: not rolled up yet', p_partition
                    USING HINT = 'Run CALL zonestats.run_rollups().';
                RETURN 'pending';
            END IF;
        END IF;
        EXECUTE format('DROP TABLE %s', p_partition);
        RETURN 'dropped';
    EXCEPTION WHEN lock_not_available OR deadlock_detected THEN
        -- deadlock_detected: on Citus a DROP can deadlock with a COPY or a
        -- rollup across the nodes, and the deadlock detector may cancel the
        -- DROP; the partition is simply busy then.
        RAISE WARNING 'zonestats.expire: % kept: busy, will retry next time', p_partition
            USING DETAIL = SQLERRM;
        RETURN 'busy';
    END;
END
$$;
COMMENT ON FUNCTION zonestats_internal.expire_partition(regclass) IS
    'drops one zonestats time partition if it is past its retention (and, for raw events, rolled up); used by expire';
REVOKE ALL ON FUNCTION zonestats_internal.expire_partition(regclass) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION zonestats_internal.expire_partition(regclass) TO zonestats_admin;
