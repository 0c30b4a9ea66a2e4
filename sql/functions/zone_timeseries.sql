CREATE OR REPLACE FUNCTION zonestats.zone_timeseries(
    p_zone_id bigint, p_since timestamptz, p_until timestamptz, p_step interval DEFAULT NULL)
RETURNS TABLE (bucket timestamptz, requests bigint, cached_requests bigint, encrypted_requests bigint,
               bytes bigint, cached_bytes bigint, encrypted_bytes bigint, threats bigint, page_views bigint,
               uniques bigint)
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, public, pg_temp
SET timezone = 'UTC'
AS $$
DECLARE
    v_since timestamptz := date_trunc('minute', p_since);
    v_until timestamptz := date_trunc('minute', p_until);
    v_step  interval := p_step;
    v_table text;
    v_uniques text;
BEGIN
    -- One row per step in [p_since, p_until) for one zone, steps without
    -- traffic included as zeros. Counters are sums; uniques is the
    -- cardinality of the union of the step's hll sketches. Reads the
    -- coarsest rollup table that fits the range and the step. Times are
    -- truncated to the minute; buckets are UTC.
    IF v_until <= v_since THEN
        RETURN;
    END IF;
    IF v_step IS NULL THEN
        -- The smallest of these giving at most 300 points.
        SELECT s INTO v_step FROM unnest(ARRAY['1 minute', '5 minutes', '15 minutes', '1 hour', '6 hours', '1 day', '7 days']::interval[]) AS s
        WHERE extract(epoch FROM v_until - v_since) / extract(epoch FROM s) <= 300 ORDER BY s LIMIT 1;
        v_step := coalesce(v_step, interval '30 days');
    END IF;
    IF v_step < interval '1 minute' OR extract(month FROM v_step) <> 0 OR extract(year FROM v_step) <> 0 THEN
        RAISE EXCEPTION 'zonestats.zone_timeseries: step must be at least 1 minute and given in days, hours or minutes, not %', v_step;
    END IF;
    v_table := zonestats_internal.rollup_level(v_since, v_until, v_step);
    -- A step of exactly one bucket reads the stored uniques_count; a wider
    -- step unions the sketches of its buckets.
    v_uniques := CASE WHEN v_step = CASE v_table WHEN 'rollup_1m' THEN interval '1 minute'
                                                  WHEN 'rollup_1h' THEN interval '1 hour'
                                                  ELSE interval '1 day' END
                      THEN 'sum(t.uniques_count)'
                      ELSE 'round(hll_cardinality(hll_union_agg(t.uniques)))' END;
    RETURN QUERY EXECUTE format($sql$
        SELECT s.step, coalesce(r.requests, 0)::bigint, coalesce(r.cached_requests, 0)::bigint,
               coalesce(r.encrypted_requests, 0)::bigint, coalesce(r.bytes, 0)::bigint, coalesce(r.cached_bytes, 0)::bigint,
               coalesce(r.encrypted_bytes, 0)::bigint, coalesce(r.threats, 0)::bigint, coalesce(r.page_views, 0)::bigint,
               coalesce(r.uniques, 0)::bigint
        FROM generate_series($2, $3 - interval '1 microsecond', $4) AS s(step)
        LEFT JOIN (
            SELECT date_bin($4, t.bucket, $2) AS step,
                   sum(t.requests) AS requests, sum(t.cached_requests) AS cached_requests,
                   sum(t.encrypted_requests) AS encrypted_requests, sum(t.bytes) AS bytes,
                   sum(t.cached_bytes) AS cached_bytes, sum(t.encrypted_bytes) AS encrypted_bytes,
                   sum(t.threats) AS threats, sum(t.page_views) AS page_views,
                   %s AS uniques
            FROM zonestats.%I t
            WHERE t.zone_id = $1 AND t.bucket >= $2 AND t.bucket < $3
            GROUP BY 1
        ) r ON r.step = s.step
        ORDER BY s.step
    $sql$, v_uniques, v_table) USING p_zone_id, v_since, v_until, v_step;
END
$$;
COMMENT ON FUNCTION zonestats.zone_timeseries(bigint, timestamptz, timestamptz, interval) IS
    'per-step counters and uniques of one zone over [since, until); step defaults to one giving at most 300 points; reads the coarsest rollup that fits';
