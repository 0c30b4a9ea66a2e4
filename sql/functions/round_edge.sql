CREATE OR REPLACE FUNCTION zonestats_internal.round_edge(p_t timestamptz, p_minutes_from timestamptz, p_hours_from timestamptz)
RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
SET timezone = 'UTC'
AS $$
    -- p_t rounded down to the minute if minutes are kept at that time, else
    -- to the hour if hours are, else to the UTC day.
    SELECT CASE WHEN p_t >= p_minutes_from THEN date_trunc('minute', p_t)
                WHEN p_t >= p_hours_from THEN date_trunc('hour', p_t)
                ELSE date_trunc('day', p_t) END
$$;
COMMENT ON FUNCTION zonestats_internal.round_edge(timestamptz, timestamptz, timestamptz) IS
    'rounds a range end down to the finest rollup level kept at that time';
REVOKE ALL ON FUNCTION zonestats_internal.round_edge(timestamptz, timestamptz, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION zonestats_internal.round_edge(timestamptz, timestamptz, timestamptz) TO zonestats_reader, zonestats_tenant;
