CREATE OR REPLACE FUNCTION zonestats.zone_summary(
    p_zone_id bigint, p_since timestamptz, p_until timestamptz, p_n int DEFAULT 10)
RETURNS TABLE (since timestamptz, until timestamptz,
               requests bigint, cached_requests bigint, encrypted_requests bigint, bytes bigint,
               cached_bytes bigint, encrypted_bytes bigint, threats bigint, page_views bigint, uniques bigint,
               requests_by_country public.hstore, bytes_by_country public.hstore, threats_by_country public.hstore,
               requests_by_status public.hstore, requests_by_content_type public.hstore,
               bytes_by_content_type public.hstore, requests_by_colo public.hstore, bytes_by_colo public.hstore,
               requests_by_ssl_protocol public.hstore, requests_by_ip_class public.hstore,
               threats_by_type public.hstore, page_views_by_browser public.hstore)
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, public, pg_temp
SET timezone = 'UTC'
AS $$
#variable_conflict use_column
DECLARE
    v_range record;
BEGIN
    -- One row for one zone over [p_since, p_until): the range answered
    -- (ends rounded down to the finest level kept, see query_range), the
    -- counters, uniques over the whole range (the cardinality of one
    -- hll_union of every piece, not a sum of per-bucket uniques), and every
    -- map cut to its p_n largest entries (all when p_n is NULL; read them in
    -- order with zonestats.top). Exact at the edges: whole days from
    -- rollup_1d, the hours and minutes around them from rollup_1h and
    -- rollup_1m (range_pieces). Infinite ends are allowed ('-infinity':
    -- since the beginning). (PL/pgSQL and the range computed first: on
    -- Citus the statement below is routed to the zone's shard, where only
    -- values, not the coordinator's settings, can go.)
    SELECT * INTO v_range FROM zonestats_internal.query_range(p_since, p_until);
    RETURN QUERY
    SELECT v_range.since, v_range.until, x.requests, x.cached_requests, x.encrypted_requests, x.bytes, x.cached_bytes,
           x.encrypted_bytes, x.threats, x.page_views, x.uniques,
           zonestats_internal.top_keys(x.requests_by_country, p_n),
           zonestats_internal.top_keys(x.bytes_by_country, p_n),
           zonestats_internal.top_keys(x.threats_by_country, p_n),
           zonestats_internal.top_keys(x.requests_by_status, p_n),
           zonestats_internal.top_keys(x.requests_by_content_type, p_n),
           zonestats_internal.top_keys(x.bytes_by_content_type, p_n),
           zonestats_internal.top_keys(x.requests_by_colo, p_n),
           zonestats_internal.top_keys(x.bytes_by_colo, p_n),
           zonestats_internal.top_keys(x.requests_by_ssl_protocol, p_n),
           zonestats_internal.top_keys(x.requests_by_ip_class, p_n),
           zonestats_internal.top_keys(x.threats_by_type, p_n),
           zonestats_internal.top_keys(x.page_views_by_browser, p_n)
    FROM (
        SELECT coalesce(sum(r.requests), 0)::bigint AS requests,
               coalesce(sum(r.cached_requests), 0)::bigint AS cached_requests,
               coalesce(sum(r.encrypted_requests), 0)::bigint AS encrypted_requests,
               coalesce(sum(r.bytes), 0)::bigint AS bytes,
               coalesce(sum(r.cached_bytes), 0)::bigint AS cached_bytes,
               coalesce(sum(r.encrypted_bytes), 0)::bigint AS encrypted_bytes,
               coalesce(sum(r.threats), 0)::bigint AS threats,
               coalesce(sum(r.page_views), 0)::bigint AS page_views,
               coalesce(round(hll_cardinality(hll_union_agg(r.uniques))), 0)::bigint AS uniques,
               zonestats.hstore_sum_agg(r.requests_by_country) AS requests_by_country,
               zonestats.hstore_sum_agg(r.bytes_by_country) AS bytes_by_country,
               zonestats.hstore_sum_agg(r.threats_by_country) AS threats_by_country,
               zonestats.hstore_sum_agg(r.requests_by_status) AS requests_by_status,
               zonestats.hstore_sum_agg(r.requests_by_content_type) AS requests_by_content_type,
               zonestats.hstore_sum_agg(r.bytes_by_content_type) AS bytes_by_content_type,
               zonestats.hstore_sum_agg(r.requests_by_colo) AS requests_by_colo,
               zonestats.hstore_sum_agg(r.bytes_by_colo) AS bytes_by_colo,
               zonestats.hstore_sum_agg(r.requests_by_ssl_protocol) AS requests_by_ssl_protocol,
               zonestats.hstore_sum_agg(r.requests_by_ip_class) AS requests_by_ip_class,
               zonestats.hstore_sum_agg(r.threats_by_type) AS threats_by_type,
               zonestats.hstore_sum_agg(r.page_views_by_browser) AS page_views_by_browser
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
        ) AS r
    ) AS x;
END
$$;
COMMENT ON FUNCTION zonestats.zone_summary(bigint, timestamptz, timestamptz, int) IS
    'one zone over [since, until): counters, uniques over the whole range (one hll union), and every map cut to its n largest entries; exact at the edges';
