CREATE OR REPLACE PROCEDURE zonestats.run_rollups(p_wait boolean DEFAULT false)
LANGUAGE plpgsql
AS $$
DECLARE
    v_end    bigint;
    v_upto   bigint;
    v_chunk  bigint;
    v_done   bigint;
    v_events bigint := 0;
    v_chunks int := 0;
    v_start  timestamptz := clock_timestamp();
BEGIN
    -- Rolls every settled raw event into the 1-minute, 1-hour and 1-day
    -- rollups, incrementally: each event exactly once, however often and
    -- however concurrently it is called, while COPY goes on. Commits after
    -- every chunk of rollup_chunk_events events. If another run holds the
    -- rollup lock it returns at once with a NOTICE, or waits when p_wait.
    -- (A procedure that COMMITs cannot SET search_path: every name here is
    -- qualified, and the work is done by functions that pin it. Nor can it
    -- be SECURITY DEFINER: the functions that need the tables' owner are.)
    IF p_wait THEN
        PERFORM pg_catalog.pg_advisory_xact_lock(7236001);
    ELSIF NOT pg_catalog.pg_try_advisory_xact_lock(7236001) THEN
        RAISE NOTICE 'zonestats.run_rollups: another run is in progress; nothing to do here';
        RETURN;
    END IF;

    PERFORM zonestats_internal.maintain_partitions();
    COMMIT;

    v_end := zonestats_internal.rollup_window();
    SELECT s.rollup_chunk_events INTO v_chunk FROM zonestats.settings s;
    LOOP
        -- The advisory lock is transaction-scoped: take it again for every
        -- chunk; the bookmark inside rollup_events keeps chunks exact even
        -- if another caller slipped in between.
        PERFORM pg_catalog.pg_advisory_xact_lock(7236001);
        SELECT r.last_event_id INTO v_done FROM zonestats_internal.rollup_state r;
        EXIT WHEN v_done >= v_end;
        v_upto := LEAST(v_end, v_done + v_chunk);
        v_events := v_events + zonestats_internal.rollup_events(v_upto);
        v_chunks := v_chunks + 1;
        COMMIT;
    END LOOP;
    COMMIT;
    RAISE NOTICE 'zonestats.run_rollups: % events rolled up in % chunk(s), up to event_id %, in % ms',
        v_events, v_chunks, v_end, round(extract(epoch FROM clock_timestamp() - v_start) * 1000);
END
$$;
COMMENT ON PROCEDURE zonestats.run_rollups(boolean) IS
    'rolls new raw events into the 1-minute, 1-hour and 1-day rollups (incremental, exactly once, safe during COPY and concurrent calls); call every minute from cron or pg_cron';
REVOKE ALL ON PROCEDURE zonestats.run_rollups(boolean) FROM PUBLIC;
GRANT EXECUTE ON PROCEDURE zonestats.run_rollups(boolean) TO zonestats_admin;
