CREATE OR REPLACE FUNCTION zonestats_internal.merge_delta(p_level text, p_oldest timestamptz)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
SET timezone = 'UTC'
AS $$
DECLARE
    v_table text := CASE p_level WHEN 'minute' THEN 'rollup_1m' WHEN 'hour' THEN 'rollup_1h' WHEN 'day' THEN 'rollup_1d' END;
    v_rows bigint;
BEGIN
    -- Merges the deltas of this rollup run (delta_counts, delta_maps) into
    -- the rollup table of p_level: counters add, uniques hll_union, maps add
    -- per key. Buckets older than p_oldest (the level's retention) are left
    -- out. Both sides are grouped by zone_id, so on Citus this runs per shard.
    IF v_table IS NULL THEN
        RAISE EXCEPTION 'zonestats: unknown rollup level %', p_level;
    END IF;
    EXECUTE format($sql$
        INSERT INTO zonestats.%I AS t (zone_id, bucket,
            requests, cached_requests, encrypted_requests, bytes, cached_bytes, encrypted_bytes, threats, page_views, uniques,
            requests_by_country, bytes_by_country, threats_by_country, requests_by_status,
            requests_by_content_type, bytes_by_content_type, requests_by_colo, bytes_by_colo,
            requests_by_ssl_protocol, requests_by_ip_class, threats_by_type, page_views_by_browser)
        SELECT c.zone_id, c.bucket,
            c.requests, c.cached_requests, c.encrypted_requests, c.bytes, c.cached_bytes, c.encrypted_bytes, c.threats, c.page_views, c.uniques,
            coalesce(m.requests_by_country, ''), coalesce(m.bytes_by_country, ''), coalesce(m.threats_by_country, ''),
            coalesce(m.requests_by_status, ''), coalesce(m.requests_by_content_type, ''), coalesce(m.bytes_by_content_type, ''),
            coalesce(m.requests_by_colo, ''), coalesce(m.bytes_by_colo, ''), coalesce(m.requests_by_ssl_protocol, ''),
            coalesce(m.requests_by_ip_class, ''), coalesce(m.threats_by_type, ''), coalesce(m.page_views_by_browser, '')
        FROM (
            SELECT zone_id, date_trunc($1, minute) AS bucket,
                sum(requests)::bigint AS requests, sum(cached_requests)::bigint AS cached_requests,
                sum(encrypted_requests)::bigint AS encrypted_requests, sum(bytes)::bigint AS bytes,
                sum(cached_bytes)::bigint AS cached_bytes, sum(encrypted_bytes)::bigint AS encrypted_bytes,
                sum(threats)::bigint AS threats, sum(page_views)::bigint AS page_views,
                hll_union_agg(uniques) AS uniques
            FROM zonestats_internal.delta_counts
            WHERE minute >= $2
            GROUP BY zone_id, date_trunc($1, minute)
        ) c
        LEFT JOIN (
            SELECT zone_id, bucket,
                hstore(array_agg(key) FILTER (WHERE dim = 'country'), array_agg(requests::text) FILTER (WHERE dim = 'country')) AS requests_by_country,
                hstore(array_agg(key) FILTER (WHERE dim = 'country'), array_agg(bytes::text) FILTER (WHERE dim = 'country')) AS bytes_by_country,
                hstore(array_agg(key) FILTER (WHERE dim = 'country' AND threats > 0), array_agg(threats::text) FILTER (WHERE dim = 'country' AND threats > 0)) AS threats_by_country,
                hstore(array_agg(key) FILTER (WHERE dim = 'status'), array_agg(requests::text) FILTER (WHERE dim = 'status')) AS requests_by_status,
                hstore(array_agg(key) FILTER (WHERE dim = 'content_type'), array_agg(requests::text) FILTER (WHERE dim = 'content_type')) AS requests_by_content_type,
                hstore(array_agg(key) FILTER (WHERE dim = 'content_type'), array_agg(bytes::text) FILTER (WHERE dim = 'content_type')) AS bytes_by_content_type,
                hstore(array_agg(key) FILTER (WHERE dim = 'colo'), array_agg(requests::text) FILTER (WHERE dim = 'colo')) AS requests_by_colo,
                hstore(array_agg(key) FILTER (WHERE dim = 'colo'), array_agg(bytes::text) FILTER (WHERE dim = 'colo')) AS bytes_by_colo,
                hstore(array_agg(key) FILTER (WHERE dim = 'ssl_protocol'), array_agg(requests::text) FILTER (WHERE dim = 'ssl_protocol')) AS requests_by_ssl_protocol,
                hstore(array_agg(key) FILTER (WHERE dim = 'ip_class'), array_agg(requests::text) FILTER (WHERE dim = 'ip_class')) AS requests_by_ip_class,
                hstore(array_agg(key) FILTER (WHERE dim = 'threat'), array_agg(threats::text) FILTER (WHERE dim = 'threat')) AS threats_by_type,
                hstore(array_agg(key) FILTER (WHERE dim = 'browser'), array_agg(page_views::text) FILTER (WHERE dim = 'browser')) AS page_views_by_browser
            FROM (
                SELECT zone_id, date_trunc($1, minute) AS bucket, dim, key,
                    sum(requests)::bigint AS requests, sum(bytes)::bigint AS bytes,
                    sum(threats)::bigint AS threats, sum(page_views)::bigint AS page_views
                FROM zonestats_internal.delta_maps
                WHERE minute >= $2
                GROUP BY zone_id, date_trunc($1, minute), dim, key
            ) k
            GROUP BY zone_id, bucket
        ) m ON m.zone_id = c.zone_id AND m.bucket = c.bucket
        ON CONFLICT (zone_id, bucket) DO UPDATE SET
            requests = t.requests + EXCLUDED.requests,
            cached_requests = t.cached_requests + EXCLUDED.cached_requests,
            encrypted_requests = t.encrypted_requests + EXCLUDED.encrypted_requests,
            bytes = t.bytes + EXCLUDED.bytes,
            cached_bytes = t.cached_bytes + EXCLUDED.cached_bytes,
            encrypted_bytes = t.encrypted_bytes + EXCLUDED.encrypted_bytes,
            threats = t.threats + EXCLUDED.threats,
            page_views = t.page_views + EXCLUDED.page_views,
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
        $sql$, v_table)
    USING p_level, coalesce(p_oldest, '-infinity');
    GET DIAGNOSTICS v_rows = ROW_COUNT;
    RETURN v_rows;
END
$$;
COMMENT ON FUNCTION zonestats_internal.merge_delta(text, timestamptz) IS
    'merges the current rollup deltas into the minute, hour or day rollup table';
