CREATE OR REPLACE FUNCTION zonestats_internal.query_range(p_since timestamptz, p_until timestamptz)
RETURNS TABLE (since timestamptz, until timestamptz,
               minutes_from timestamptz, hours_from timestamptz, days_from timestamptz)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
SET timezone = 'UTC'
AS $$
    -- The range the query functions answer for [p_since, p_until), and from
    -- when each rollup level is kept (its retention, as the rollups and
    -- expire apply it: 1-minute rows from a UTC day, 1-hour rows from a UTC
    -- month, 1-day rows from a UTC day or forever). Each end is rounded down
    -- to the start of its bucket at the finest level still kept at that
    -- time: the minute while minutes are kept, else the hour while hours
    -- are kept, else the day. So every piece of a range can be read exactly.
    SELECT zonestats_internal.round_edge(p_since, k.minutes_from, k.hours_from),
           zonestats_internal.round_edge(p_until, k.minutes_from, k.hours_from),
           k.minutes_from, k.hours_from, k.days_from
    FROM (SELECT date_trunc('day', now() - s.minute_retention) AS minutes_from,
                 date_trunc('month', now() - s.hour_retention) AS hours_from,
                 coalesce(date_trunc('day', now() - s.day_retention), '-infinity') AS days_from
          FROM zonestats.settings s) k
$$;
COMMENT ON FUNCTION zonestats_internal.query_range(timestamptz, timestamptz) IS
    'a query range rounded down to the finest rollup level kept at each end, and from when each level is kept';
REVOKE ALL ON FUNCTION zonestats_internal.query_range(timestamptz, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION zonestats_internal.query_range(timestamptz, timestamptz) TO zonestats_reader, zonestats_tenant;
