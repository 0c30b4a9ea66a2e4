CREATE OR REPLACE FUNCTION zonestats_internal.rollup_window()
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_end bigint;
BEGIN
    -- Returns the highest event_id below which every raw event is settled:
    -- committed or rolled back, never still in flight. The incremental
    -- window of Citus' "scalable incremental data aggregation": read the
    -- sequence, then wait for every writer that may hold a smaller id by
    -- taking (and at once releasing) a lock that conflicts with COPY/INSERT.
    -- Every writer takes ROW EXCLUSIVE on raw_events before it draws ids.
    -- Runs as the owner of raw_events (SECURITY DEFINER), so the caller
    -- needs no privilege on the raw table to take that lock.
    v_end := pg_sequence_last_value('zonestats_internal.raw_events_event_id_seq');
    IF v_end IS NULL THEN
        RETURN 0;  -- no event was ever loaded
    END IF;
    BEGIN
        LOCK TABLE zonestats_internal.raw_events IN EXCLUSIVE MODE;
        -- Leaving the block by an exception releases the lock at once.
        RAISE EXCEPTION USING ERRCODE = 'ZS001';
    EXCEPTION WHEN SQLSTATE 'ZS001' THEN
        NULL;
    END;
    RETURN v_end;
END
$$;
COMMENT ON FUNCTION zonestats_internal.rollup_window() IS
    'highest raw event_id such that no smaller id is still being written (waits briefly for writers in flight)';
REVOKE ALL ON FUNCTION zonestats_internal.rollup_window() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION zonestats_internal.rollup_window() TO zonestats_admin;
