CREATE OR REPLACE FUNCTION zonestats_internal.delta_query(p_source text, p_unit text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    -- The SELECT that reads a delta table (p_source: a schema-qualified
    -- table name from rollup_events; rows shaped like the rollup tables)
    -- as rows of the rollup table one level up: as it is when p_unit is
    -- NULL, else grouped into p_unit buckets
    -- (counters sum, uniques hll_union_agg, maps hstore_sum_agg). Its
    -- parameter $1 is the oldest bucket to keep. Grouped by zone_id, so on
    -- Citus it runs shard by shard.
    SELECT CASE WHEN p_unit IS NULL THEN format($q$
            SELECT zone_id, bucket,
                requests, cached_requests, encrypted_requests, bytes, cached_bytes, encrypted_bytes, threats,
                page_views, uniques, uniques_count, requests_by_country, bytes_by_country, threats_by_country,
                requests_by_status, requests_by_content_type, bytes_by_content_type, requests_by_colo,
                bytes_by_colo, requests_by_ssl_protocol, requests_by_ip_class, threats_by_type,
                page_views_by_browser
            FROM %s
            WHERE bucket >= $1$q$, p_source)
        ELSE format($q$
            SELECT zone_id, date_trunc(%L, bucket),
                sum(requests)::bigint, sum(cached_requests)::bigint, sum(encrypted_requests)::bigint,
                sum(bytes)::bigint, sum(cached_bytes)::bigint, sum(encrypted_bytes)::bigint,
                sum(threats)::bigint, sum(page_views)::bigint, hll_union_agg(uniques),
                round(coalesce(hll_cardinality(hll_union_agg(uniques)), 0))::bigint,
                zonestats.hstore_sum_agg(requests_by_country), zonestats.hstore_sum_agg(bytes_by_country),
                zonestats.hstore_sum_agg(threats_by_country), zonestats.hstore_sum_agg(requests_by_status),
                zonestats.hstore_sum_agg(requests_by_content_type),
                zonestats.hstore_sum_agg(bytes_by_content_type), zonestats.hstore_sum_agg(requests_by_colo),
                zonestats.hstore_sum_agg(bytes_by_colo), zonestats.hstore_sum_agg(requests_by_ssl_protocol),
                zonestats.hstore_sum_agg(requests_by_ip_class), zonestats.hstore_sum_agg(threats_by_type),
                zonestats.hstore_sum_agg(page_views_by_browser)
            FROM %s
            WHERE bucket >= $1
            GROUP BY zone_id, date_trunc(%L, bucket)$q$, p_unit, p_source, p_unit)
    END
$$;
COMMENT ON FUNCTION zonestats_internal.delta_query(text, text) IS
    'SQL text reading a rollup delta table, as is or grouped into coarser buckets';
REVOKE ALL ON FUNCTION zonestats_internal.delta_query(text, text) FROM PUBLIC;
