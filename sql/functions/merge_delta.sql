CREATE OR REPLACE FUNCTION zonestats_internal.merge_delta(p_level text, p_oldest timestamptz)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
SET timezone = 'UTC'
AS $$
DECLARE
    v_table  text := CASE p_level WHEN 'minute' THEN 'rollup_1m' WHEN 'hour' THEN 'rollup_1h' WHEN 'day' THEN 'rollup_1d' END;
    v_source text;
    v_rows   bigint;
BEGIN
    -- Merges the deltas of this rollup run (rollup_delta, one row per zone
    -- and minute) into the rollup table of p_level: counters add, uniques
    -- hll_union, maps add per key (hstore_sum). For hours and days the
    -- minutes are first grouped into the level's buckets. Buckets older than
    -- p_oldest (the level's retention) are left out. Everything is grouped
    -- by zone_id, so on Citus this runs shard by shard.
    IF v_table IS NULL THEN
        RAISE EXCEPTION 'zonestats: unknown rollup level %', p_level;
    END IF;
    IF p_level = 'minute' THEN
        v_source := $src$
            SELECT zone_id, bucket,
                requests, cached_requests, encrypted_requests, bytes, cached_bytes, encrypted_bytes, threats,
                page_views, uniques, requests_by_country, bytes_by_country, threats_by_country,
                requests_by_status, requests_by_content_type, bytes_by_content_type, requests_by_colo,
                bytes_by_colo, requests_by_ssl_protocol, requests_by_ip_class, threats_by_type,
                page_views_by_browser
            FROM zonestats_internal.rollup_delta
            WHERE bucket >= $2$src$;
    ELSE
        -- Sorted grouping: hll_union_agg keeps a large state per group.
        v_source := $src$
            SELECT zone_id, date_trunc($1, bucket),
                sum(requests)::bigint, sum(cached_requests)::bigint, sum(encrypted_requests)::bigint,
                sum(bytes)::bigint, sum(cached_bytes)::bigint, sum(encrypted_bytes)::bigint,
                sum(threats)::bigint, sum(page_views)::bigint, hll_union_agg(uniques),
                zonestats.hstore_sum_agg(requests_by_country), zonestats.hstore_sum_agg(bytes_by_country),
                zonestats.hstore_sum_agg(threats_by_country), zonestats.hstore_sum_agg(requests_by_status),
                zonestats.hstore_sum_agg(requests_by_content_type),
                zonestats.hstore_sum_agg(bytes_by_content_type), zonestats.hstore_sum_agg(requests_by_colo),
                zonestats.hstore_sum_agg(bytes_by_colo), zonestats.hstore_sum_agg(requests_by_ssl_protocol),
                zonestats.hstore_sum_agg(requests_by_ip_class), zonestats.hstore_sum_agg(threats_by_type),
                zonestats.hstore_sum_agg(page_views_by_browser)
            FROM zonestats_internal.rollup_delta
            WHERE bucket >= $2
            GROUP BY zone_id, date_trunc($1, bucket)$src$;
    END IF;
    EXECUTE format($sql$
        INSERT INTO zonestats.%I AS t (zone_id, bucket,
            requests, cached_requests, encrypted_requests, bytes, cached_bytes, encrypted_bytes, threats,
            page_views, uniques, requests_by_country, bytes_by_country, threats_by_country,
            requests_by_status, requests_by_content_type, bytes_by_content_type, requests_by_colo,
            bytes_by_colo, requests_by_ssl_protocol, requests_by_ip_class, threats_by_type,
            page_views_by_browser)
        %s
        ON CONFLICT (zone_id, bucket) DO UPDATE SET
            requests = t.requests + EXCLUDED.requests,
            cached_requests = t.cached_requests + EXCLUDED.cached_requests,
            encrypted_requests = t.encrypted_requests + EXCLUDED.encrypted_requests,
            bytes = t.bytes + EXCLUDED.bytes, cached_bytes = t.cached_bytes + EXCLUDED.cached_bytes,
            encrypted_bytes = t.encrypted_bytes + EXCLUDED.encrypted_bytes,
            threats = t.threats + EXCLUDED.threats, page_views = t.page_views + EXCLUDED.page_views,
            uniques = hll_union(t.uniques, EXCLUDED.uniques),
            requests_by_country = zonestats.hstore_sum(t.requests_by_country, EXCLUDED.requests_by_country),
            bytes_by_country = zonestats.hstore_sum(t.bytes_by_country, EXCLUDED.bytes_by_country),
            threats_by_country = zonestats.hstore_sum(t.threats_by_country, EXCLUDED.threats_by_country),
            requests_by_status = zonestats.hstore_sum(t.requests_by_status, EXCLUDED.requests_by_status),
            requests_by_content_type = zonestats.hstore_sum(t.requests_by_content_type, EXCLUDED.requests_by_content_type),
            bytes_by_content_type = zonestats.hstore_sum(t.bytes_by_content_type, EXCLUDED.bytes_by_content_type),
            requests_by_colo = zonestats.hstore_sum(t.requests_by_colo, EXCLUDED.requests_by_colo),
            bytes_by_colo = zonestats.hstore_sum(t.bytes_by_colo, EXCLUDED.bytes_by_colo),
            requests_by_ssl_protocol = zonestats.hstore_sum(t.requests_by_ssl_protocol, EXCLUDED.requests_by_ssl_protocol),
            requests_by_ip_class = zonestats.hstore_sum(t.requests_by_ip_class, EXCLUDED.requests_by_ip_class),
            threats_by_type = zonestats.hstore_sum(t.threats_by_type, EXCLUDED.threats_by_type),
            page_views_by_browser = zonestats.hstore_sum(t.page_views_by_browser, EXCLUDED.page_views_by_browser)
        $sql$, v_table, v_source)
    USING p_level, coalesce(p_oldest, '-infinity');
    GET DIAGNOSTICS v_rows = ROW_COUNT;
    RETURN v_rows;
END
$$;
COMMENT ON FUNCTION zonestats_internal.merge_delta(text, timestamptz) IS
    'merges the current rollup deltas into the minute, hour or day rollup table';
