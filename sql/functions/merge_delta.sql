CREATE OR REPLACE FUNCTION zonestats_internal.merge_delta(p_target text, p_source text, p_unit text, p_oldest timestamptz)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
SET timezone = 'UTC'
AS $$
DECLARE
    v_rows bigint;
BEGIN
    -- Merges a delta table of this rollup run (see delta_query: as is, or
    -- grouped into p_unit buckets) into the rollup table p_target: counters
    -- add, uniques hll_union, maps add per key (hstore_sum). Buckets older
    -- than p_oldest (the level's retention) are left out.
    IF p_target NOT IN ('rollup_1m', 'rollup_1h', 'rollup_1d') THEN
        RAISE EXCEPTION 'zonestats: % is not a rollup table', p_target;
    END IF;
    EXECUTE format($sql$
        INSERT INTO zonestats.%I AS t (zone_id, bucket,
            requests, cached_requests, encrypted_requests, bytes, cached_bytes, encrypted_bytes, threats,
            page_views, uniques, uniques_count, requests_by_country, bytes_by_country, threats_by_country,
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
            uniques_count = round(coalesce(hll_cardinality(hll_union(t.uniques, EXCLUDED.uniques)), 0)),
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
        $sql$, p_target, zonestats_internal.delta_query(p_source, p_unit))
    USING coalesce(p_oldest, '-infinity');
    GET DIAGNOSTICS v_rows = ROW_COUNT;
    RETURN v_rows;
END
$$;
COMMENT ON FUNCTION zonestats_internal.merge_delta(text, text, text, timestamptz) IS
    'merges a rollup delta table into the minute, hour or day rollup table';
REVOKE ALL ON FUNCTION zonestats_internal.merge_delta(text, text, text, timestamptz) FROM PUBLIC;
