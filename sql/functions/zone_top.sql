CREATE OR REPLACE FUNCTION zonestats.zone_top(
    p_zone_id bigint, p_since timestamptz, p_until timestamptz, p_map text, p_n int DEFAULT 10)
RETURNS TABLE (key text, value bigint)
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, public, pg_temp
SET timezone = 'UTC'
AS $$
#variable_conflict use_column
DECLARE
    v_range record;
BEGIN
    -- The p_n keys of one map (see zonestats.maps()) with the largest sums
    -- over [p_since, p_until) for one zone, largest first, ties by key
    -- (zonestats.top). Exact at the edges, like zone_summary. The map is
    -- chosen by name from a fixed list, never spliced into SQL.
    IF NOT EXISTS (SELECT 1 FROM zonestats.maps() AS m WHERE m.map = p_map) THEN
        RAISE EXCEPTION 'zonestats.zone_top: unknown map %', coalesce(quote_literal(p_map), 'NULL')
            USING HINT = 'SELECT map FROM zonestats.maps() lists them.';
    END IF;
    -- The range first (on Citus the query below goes to the zone's shard).
    SELECT * INTO v_range FROM zonestats_internal.query_range(p_since, p_until);
    RETURN QUERY
    SELECT t.key, t.value
    FROM zonestats.top((
        SELECT zonestats.hstore_sum_agg(CASE p_map
                   WHEN 'requests_by_country' THEN r.requests_by_country
                   WHEN 'bytes_by_country' THEN r.bytes_by_country
                   WHEN 'threats_by_country' THEN r.threats_by_country
                   WHEN 'requests_by_status' THEN r.requests_by_status
                   WHEN 'requests_by_content_type' THEN r.requests_by_content_type
                   WHEN 'bytes_by_content_type' THEN r.bytes_by_content_type
                   WHEN 'requests_by_colo' THEN r.requests_by_colo
                   WHEN 'bytes_by_colo' THEN r.bytes_by_colo
                   WHEN 'requests_by_ssl_protocol' THEN r.requests_by_ssl_protocol
                   WHEN 'requests_by_ip_class' THEN r.requests_by_ip_class
                   WHEN 'threats_by_type' THEN r.threats_by_type
                   WHEN 'page_views_by_browser' THEN r.page_views_by_browser END)
        FROM zonestats_internal.range_pieces(v_range.since, v_range.until, 'day') AS p
        CROSS JOIN LATERAL (
            SELECT m.* FROM zonestats.rollup_1m AS m
            WHERE p.level = 'minute' AND m.zone_id = p_zone_id AND m.bucket >= p.lo AND m.bucket < p.hi
            UNION ALL
            SELECT h.* FROM zonestats.rollup_1h AS h
            WHERE p.level = 'hour' AND h.zone_id = p_zone_id AND h.bucket >= p.lo AND h.bucket < p.hi
            UNION ALL
            SELECT d.* FROM zonestats.rollup_1d AS d
            WHERE p.level = 'day' AND d.zone_id = p_zone_id AND d.bucket >= p.lo AND d.bucket < p.hi
        ) AS r), p_n) AS t;
END
$$;
COMMENT ON FUNCTION zonestats.zone_top(bigint, timestamptz, timestamptz, text, int) IS
    'top n keys of one map (zonestats.maps()) for one zone over [since, until), by summed value, largest first; exact at the edges';
