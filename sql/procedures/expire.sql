CREATE OR REPLACE PROCEDURE zonestats.expire()
LANGUAGE plpgsql
AS $$
DECLARE
    s        zonestats.settings;
    p        record;
    v_now    timestamptz := now();
    v_done   bigint;
    v_pending boolean;
    v_dropped int := 0;
    v_skipped int := 0;
    v_deleted bigint;
    v_columnar int := 0;
BEGIN
    -- Retention: drops whole raw partitions that are older than
    -- raw_retention and fully rolled up, and rollup partitions older than
    -- their level's retention; converts old raw partitions to columnar
    -- (with citus_columnar); trims the default partitions; makes
    -- partitions ahead. One partition per transaction; a partition that is
    -- busy (lock_timeout) is skipped with a WARNING and retried next time.
    IF NOT pg_catalog.pg_try_advisory_xact_lock(7236002) THEN
        RAISE NOTICE 'zonestats.expire: another run is in progress; nothing to do here';
        RETURN;
    END IF;
    PERFORM zonestats_internal.maintain_partitions();
    SELECT * INTO s FROM zonestats.settings;
    COMMIT;

    FOR p IN
        SELECT tp.parent_table, tp.partition, tp.to_value
        FROM zonestats_internal.time_partitions tp
        WHERE (tp.parent_table = 'zonestats_internal.raw_events'::regclass AND tp.to_value <= v_now - s.raw_retention)
           OR (tp.parent_table = 'zonestats.rollup_1m'::regclass AND tp.to_value <= v_now - s.minute_retention)
           OR (tp.parent_table = 'zonestats.rollup_1h'::regclass AND tp.to_value <= v_now - s.hour_retention)
        ORDER BY tp.to_value
    LOOP
        PERFORM pg_catalog.set_config('lock_timeout', '5s', true);
        BEGIN
            -- DROP locks the parent too; take both now, under lock_timeout.
            EXECUTE pg_catalog.format('LOCK TABLE ONLY %s, ONLY %s IN ACCESS EXCLUSIVE MODE', p.parent_table, p.partition);
            IF p.parent_table = 'zonestats_internal.raw_events'::regclass THEN
                -- Only when every row is rolled up (checked under the lock,
                -- so no writer can add one meanwhile).
                SELECT r.last_event_id INTO v_done FROM zonestats_internal.rollup_state r;
                EXECUTE pg_catalog.format('SELECT EXISTS (SELECT 1 FROM %s WHERE event_id > $1)', p.partition)
                    INTO v_pending USING v_done;
                IF v_pending THEN
                    RAISE WARNING 'zonestats.expire: % kept: not rolled up yet', p.partition
                        USING HINT = 'Run CALL zonestats.run_rollups().';
                    v_skipped := v_skipped + 1;
                    CONTINUE;
                END IF;
            END IF;
            EXECUTE pg_catalog.format('DROP TABLE %s', p.partition);
            v_dropped := v_dropped + 1;
        EXCEPTION WHEN lock_not_available THEN
            RAISE WARNING 'zonestats.expire: % kept: busy, will retry next time', p.partition
                USING DETAIL = SQLERRM;
            v_skipped := v_skipped + 1;
        END;
        COMMIT;
    END LOOP;

    -- With citus_columnar: raw partitions that ended raw_columnar_after ago
    -- and are fully rolled up are rewritten as columnar (compressed; old
    -- raw events are only read by BI scans and expiry from then on).
    -- (Not with a parent index, kept when Citus shards have replicas.)
    IF s.raw_columnar_after IS NOT NULL
       AND EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'citus_columnar')
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_index WHERE indrelid = 'zonestats_internal.raw_events'::regclass) THEN
        FOR p IN
            SELECT tp.partition, tp.to_value
            FROM zonestats_internal.time_partitions tp
            JOIN pg_catalog.pg_class c ON c.oid = tp.partition
            JOIN pg_catalog.pg_am a ON a.oid = c.relam
            WHERE tp.parent_table = 'zonestats_internal.raw_events'::regclass
              AND tp.to_value <= v_now - s.raw_columnar_after AND a.amname <> 'columnar'
            ORDER BY tp.to_value
        LOOP
            SELECT r.last_event_id INTO v_done FROM zonestats_internal.rollup_state r;
            EXECUTE pg_catalog.format('SELECT EXISTS (SELECT 1 FROM %s WHERE event_id > $1)', p.partition)
                INTO v_pending USING v_done;
            CONTINUE WHEN v_pending;
            PERFORM pg_catalog.alter_table_set_access_method(p.partition, 'columnar');
            v_columnar := v_columnar + 1;
            COMMIT;
        END LOOP;
    END IF;

    -- Rows that landed in default partitions (maintenance was late) expire
    -- row by row; they are few by construction.
    SELECT r.last_event_id INTO v_done FROM zonestats_internal.rollup_state r;
    DELETE FROM zonestats_internal.raw_events_default
     WHERE loaded_at <= v_now - s.raw_retention AND event_id <= v_done;
    GET DIAGNOSTICS v_deleted = ROW_COUNT;
    DELETE FROM zonestats.rollup_1m_default WHERE bucket < v_now - s.minute_retention;
    DELETE FROM zonestats.rollup_1h_default WHERE bucket < v_now - s.hour_retention;
    IF s.day_retention IS NOT NULL THEN
        DELETE FROM zonestats.rollup_1d WHERE bucket < v_now - s.day_retention;
    END IF;
    COMMIT;
    RAISE NOTICE 'zonestats.expire: % partition(s) dropped, % kept for now, % raw partition(s) made columnar, % raw row(s) deleted from the default partition',
        v_dropped, v_skipped, v_columnar, v_deleted;
END
$$;
COMMENT ON PROCEDURE zonestats.expire() IS
    'retention: drops raw partitions older than raw_retention once rolled up, and rollup partitions older than their retention (settings table)';
