CREATE OR REPLACE FUNCTION zonestats.rollup_lag()
RETURNS double precision
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_done   bigint;
    v_oldest timestamptz;
BEGIN
    -- How far the rollups are behind the loads, in seconds: now minus the
    -- load time of the oldest raw event not rolled up yet (0 when every
    -- loaded event is rolled up). While events keep coming this is the
    -- time between the newest raw event and the newest rolled-up one; when
    -- the rollups stop it keeps growing (alert on it). The events just
    -- past the bookmark are found through the event_id BRIN indexes, so
    -- the cost does not grow with the backlog. Runs as the tables' owner,
    -- so the reader, loader and admin roles may ask without reading raw
    -- events.
    SELECT r.last_event_id INTO v_done FROM zonestats_internal.rollup_state r;
    SELECT min(e.loaded_at) INTO v_oldest FROM zonestats_internal.raw_events e
     WHERE e.event_id > v_done AND e.event_id <= v_done + 100000;
    IF v_oldest IS NULL THEN
        -- Nothing just past the bookmark: caught up, or a long run of
        -- event ids that were never committed.
        SELECT min(e.loaded_at) INTO v_oldest FROM zonestats_internal.raw_events e
         WHERE e.event_id > v_done;
    END IF;
    RETURN COALESCE(GREATEST(extract(epoch FROM now() - v_oldest), 0), 0);
END
$$;
COMMENT ON FUNCTION zonestats.rollup_lag() IS
    'seconds the oldest loaded event has waited for the rollups (0: caught up); the loader exports it as zonestats_rollup_lag_seconds';
REVOKE ALL ON FUNCTION zonestats.rollup_lag() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION zonestats.rollup_lag() TO zonestats_reader, zonestats_loader, zonestats_admin;
