CREATE OR REPLACE PROCEDURE zonestats.expire()
LANGUAGE plpgsql
AS $$
DECLARE
    s         zonestats.settings;
    p         record;
    v_now     timestamptz := now();
    v_dropped int := 0;
    v_skipped int := 0;
    v_deleted bigint;
    v_columnar int := 0;
    v_dl_deleted bigint;
    v_dl_recent bigint;
BEGIN
    -- Retention: drops whole raw partitions that are older than
    -- raw_retention and fully rolled up, and rollup partitions older than
    -- their level's retention; converts old raw partitions to columnar
    -- (with citus_columnar); trims the default partitions; deletes dead
    -- letters past dead_letter_retention; makes partitions ahead. One
    -- partition per transaction; a partition that is busy (lock_timeout) is
    -- skipped with a WARNING and retried next time.
    -- (It COMMITs, so it runs as its caller: the DDL is done by functions
    -- that run as the tables' owner and check what they are asked to drop.)
    IF NOT pg_catalog.pg_try_advisory_xact_lock(7236002) THEN
        RAISE NOTICE 'zonestats.expire: another run is in progress; nothing to do here';
        RETURN;
    END IF;
    PERFORM zonestats_internal.maintain_partitions();
    SELECT * INTO s FROM zonestats.settings;
    COMMIT;

    FOR p IN
        SELECT tp.partition
        FROM zonestats_internal.time_partitions tp
        WHERE (tp.parent_table = 'zonestats_internal.raw_events'::regclass AND tp.to_value <= v_now - s.raw_retention)
           OR (tp.parent_table = 'zonestats.rollup_1m'::regclass AND tp.to_value <= v_now - s.minute_retention)
           OR (tp.parent_table = 'zonestats.rollup_1h'::regclass AND tp.to_value <= v_now - s.hour_retention)
        ORDER BY tp.to_value
    LOOP
        -- Not while a rollup chunk runs (the rollups' lock, per transaction):
        -- dropping a partition the rollups read or write would make them
        -- wait, and on Citus can deadlock with them across the nodes.
        PERFORM pg_catalog.pg_advisory_xact_lock(7236001);
        CASE zonestats_internal.expire_partition(p.partition)
            WHEN 'dropped' THEN v_dropped := v_dropped + 1;
            WHEN 'kept' THEN NULL;
            ELSE v_skipped := v_skipped + 1;
        END CASE;
        COMMIT;
    END LOOP;

    -- With citus_columnar: raw partitions that ended raw_columnar_after ago
    -- and are fully rolled up are rewritten as columnar (compressed; old
    -- raw events are only read by BI scans and expiry from then on).
    IF s.raw_columnar_after IS NOT NULL
       AND EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'citus_columnar') THEN
        FOR p IN
            SELECT tp.partition
            FROM zonestats_internal.time_partitions tp
            WHERE tp.parent_table = 'zonestats_internal.raw_events'::regclass
              AND tp.to_value <= v_now - s.raw_columnar_after
            ORDER BY tp.to_value
        LOOP
            PERFORM pg_catalog.pg_advisory_xact_lock(7236001);  -- as above
            IF zonestats_internal.make_columnar(p.partition) THEN
                v_columnar := v_columnar + 1;
            END IF;
            COMMIT;
        END LOOP;
    END IF;

    v_deleted := zonestats_internal.expire_default_rows();
    SELECT d.deleted, d.recent INTO v_dl_deleted, v_dl_recent FROM zonestats_internal.expire_dead_letters() d;
    COMMIT;
    RAISE NOTICE 'zonestats.expire: % partition(s) dropped, % kept for now, % raw partition(s) made columnar, % raw row(s) deleted from the default partition, % old dead letter(s) deleted, % dead letter(s) in the last 24 hours',
        v_dropped, v_skipped, v_columnar, v_deleted, v_dl_deleted, v_dl_recent;
END
$$;
COMMENT ON PROCEDURE zonestats.expire() IS
    'retention: drops raw partitions older than raw_retention once rolled up, and rollup partitions older than their retention (settings table)';
REVOKE ALL ON PROCEDURE zonestats.expire() FROM PUBLIC;
GRANT EXECUTE ON PROCEDURE zonestats.expire() TO zonestats_admin;
