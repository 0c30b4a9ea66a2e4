CREATE OR REPLACE FUNCTION zonestats_internal.expire_default_rows()
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s       zonestats.settings;
    v_done  bigint;
    v_deleted bigint;
BEGIN
    -- Retention for rows that are not in time partitions: rows that landed
    -- in the default partitions (maintenance was late; few by
    -- construction) expire row by row, and so do 1-day rollups when
    -- day_retention is set. Returns the raw rows deleted. Runs as the
    -- tables' owner (SECURITY DEFINER); it takes no arguments.
    SELECT * INTO s FROM zonestats.settings;
    SELECT r.last_event_id INTO v_done FROM zonestats_internal.rollup_state r;
    DELETE FROM zonestats_internal.raw_events_default
     WHERE loaded_at <= now() - s.raw_retention AND event_id <= v_done;
    GET DIAGNOSTICS v_deleted = ROW_COUNT;
    DELETE FROM zonestats.rollup_1m_default WHERE bucket < now() - s.minute_retention;
    DELETE FROM zonestats.rollup_1h_default WHERE bucket < now() - s.hour_retention;
    IF s.day_retention IS NOT NULL THEN
        DELETE FROM zonestats.rollup_1d WHERE bucket < now() - s.day_retention;
    END IF;
    RETURN v_deleted;
END
$$;
COMMENT ON FUNCTION zonestats_internal.expire_default_rows() IS
    'retention row by row: default partitions and, with day_retention, 1-day rollups; used by expire';
REVOKE ALL ON FUNCTION zonestats_internal.expire_default_rows() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION zonestats_internal.expire_default_rows() TO zonestats_admin;
