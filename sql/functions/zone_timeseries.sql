CREATE OR REPLACE FUNCTION zonestats.zone_timeseries(
    p_zone_id bigint, p_since timestamptz, p_until timestamptz, p_step interval DEFAULT NULL)
RETURNS TABLE (bucket timestamptz, requests bigint, cached_requests bigint, encrypted_requests bigint,
               bytes bigint, cached_bytes bigint, encrypted_bytes bigint, threats bigint, page_views bigint,
               uniques bigint)
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, public, pg_temp
SET timezone = 'UTC'
AS $$
#variable_conflict use_column
DECLARE
    -- Steps are aligned to a UTC grid from this origin (a Monday, so 7-day
    -- steps are ISO weeks).
    v_origin CONSTANT timestamptz := '2001-01-01 00:00:00+00';
    v_range  record;
    v_step   interval := p_step;
    v_secs   numeric;
    v_level  text;
    v_kept   timestamptz;
BEGIN
    -- One row per step of one zone over [p_since, p_until), steps without
    -- traffic as zeros. Steps lie on a UTC grid (bucket is the step's
    -- start), so the first and last may be partial: they hold what falls in
    -- the range. Counters are exact: whole days, hours and minutes are read
    -- from the coarsest rollup that tiles the range and the step
    -- (range_pieces), so a range that starts or ends inside an hour or a
    -- day takes those parts from the finer tables. uniques is the
    -- cardinality of the hll_union of a step's pieces (a step of one
    -- bucket reads its stored uniques_count). Ends are rounded down to the
    -- finest level kept at that time (query_range); steps that end before
    -- the step's level is kept (retention) are NULL, not 0. The default step
    -- is the smallest of 1, 2, 5, 10, 15, 30 minutes, 1, 2, 3, 6, 12 hours,
    -- 1, 2, 7, 14, 28 days giving at most 300 points.
    IF NOT (isfinite(p_since) AND isfinite(p_until)) THEN
        RAISE EXCEPTION 'zonestats.zone_timeseries: since and until must be finite';
    END IF;
    SELECT * INTO v_range FROM zonestats_internal.query_range(p_since, p_until);
    IF NOT (v_range.since < v_range.until) THEN
        RETURN;
    END IF;
    IF v_step IS NULL THEN
        SELECT c INTO v_step
        FROM unnest('{1 minute, 2 minutes, 5 minutes, 10 minutes, 15 minutes, 30 minutes, 1 hour, 2 hours, 3 hours,
                      6 hours, 12 hours, 1 day, 2 days, 7 days, 14 days, 28 days}'::interval[]) AS c
        WHERE v_range.until - v_range.since <= 300 * c
        ORDER BY c LIMIT 1;
        v_step := coalesce(v_step,
            ceil(extract(epoch FROM v_range.until - v_range.since) / (300 * 86400)) * interval '1 day');
    END IF;
    v_secs := extract(epoch FROM v_step);
    IF v_secs < 60 OR v_secs % 60 <> 0 OR extract(year FROM v_step) <> 0 OR extract(month FROM v_step) <> 0 THEN
        RAISE EXCEPTION 'zonestats.zone_timeseries: step must be a positive whole number of minutes, in minutes, hours or days; not %', v_step;
    END IF;
    IF extract(epoch FROM v_range.until - v_range.since) / v_secs > 100000 THEN
        RAISE EXCEPTION 'zonestats.zone_timeseries: more than 100000 steps of % in the range', v_step
            USING HINT = 'Choose a wider step, or leave it out.';
    END IF;
    -- The coarsest level whose buckets never straddle a step.
    v_level := CASE WHEN v_secs % 86400 = 0 THEN 'day' WHEN v_secs % 3600 = 0 THEN 'hour' ELSE 'minute' END;
    v_kept := CASE v_level WHEN 'day' THEN v_range.days_from WHEN 'hour' THEN v_range.hours_from
                           ELSE v_range.minutes_from END;

    IF v_step = interval '1 minute' THEN
        -- One minute row per step (the finest level tiles any range alone):
        -- the rows as stored, without grouping or sketch unions — the
        -- dashboards' most frequent query.
        RETURN QUERY
        SELECT g.step,
               CASE WHEN g.step + v_step > v_kept THEN coalesce(m.requests, 0) END,
               CASE WHEN g.step + v_step > v_kept THEN coalesce(m.cached_requests, 0) END,
               CASE WHEN g.step + v_step > v_kept THEN coalesce(m.encrypted_requests, 0) END,
               CASE WHEN g.step + v_step > v_kept THEN coalesce(m.bytes, 0) END,
               CASE WHEN g.step + v_step > v_kept THEN coalesce(m.cached_bytes, 0) END,
               CASE WHEN g.step + v_step > v_kept THEN coalesce(m.encrypted_bytes, 0) END,
               CASE WHEN g.step + v_step > v_kept THEN coalesce(m.threats, 0) END,
               CASE WHEN g.step + v_step > v_kept THEN coalesce(m.page_views, 0) END,
               CASE WHEN g.step + v_step > v_kept THEN coalesce(m.uniques_count, 0) END
        FROM generate_series(date_bin(v_step, v_range.since, v_origin), v_range.until - interval '1 microsecond', v_step) AS g(step)
        LEFT JOIN (
            SELECT r.bucket, r.requests, r.cached_requests, r.encrypted_requests, r.bytes, r.cached_bytes,
                   r.encrypted_bytes, r.threats, r.page_views, r.uniques_count
            FROM zonestats.rollup_1m AS r
            WHERE r.zone_id = p_zone_id AND r.bucket >= v_range.since AND r.bucket < v_range.until
        ) AS m ON m.bucket = g.step
        ORDER BY g.step;
        RETURN;
    END IF;

    RETURN QUERY
    SELECT g.step,
           CASE WHEN g.step + v_step > v_kept THEN coalesce(a.requests, 0)::bigint END,
           CASE WHEN g.step + v_step > v_kept THEN coalesce(a.cached_requests, 0)::bigint END,
           CASE WHEN g.step + v_step > v_kept THEN coalesce(a.encrypted_requests, 0)::bigint END,
           CASE WHEN g.step + v_step > v_kept THEN coalesce(a.bytes, 0)::bigint END,
           CASE WHEN g.step + v_step > v_kept THEN coalesce(a.cached_bytes, 0)::bigint END,
           CASE WHEN g.step + v_step > v_kept THEN coalesce(a.encrypted_bytes, 0)::bigint END,
           CASE WHEN g.step + v_step > v_kept THEN coalesce(a.threats, 0)::bigint END,
           CASE WHEN g.step + v_step > v_kept THEN coalesce(a.page_views, 0)::bigint END,
           CASE WHEN g.step + v_step > v_kept
                THEN (coalesce(a.uniques_one, 0) + coalesce(round(a.uniques_union), 0))::bigint END
    FROM generate_series(date_bin(v_step, v_range.since, v_origin), v_range.until - interval '1 microsecond', v_step) AS g(step)
    LEFT JOIN (
        SELECT date_bin(v_step, r.bucket, v_origin) AS step,
               sum(r.requests) AS requests, sum(r.cached_requests) AS cached_requests,
               sum(r.encrypted_requests) AS encrypted_requests, sum(r.bytes) AS bytes,
               sum(r.cached_bytes) AS cached_bytes, sum(r.encrypted_bytes) AS encrypted_bytes,
               sum(r.threats) AS threats, sum(r.page_views) AS page_views,
               -- a bucket as wide as the step is alone in it: its stored estimate
               sum(r.uniques_count) FILTER (WHERE r.width = v_step) AS uniques_one,
               hll_cardinality(hll_union_agg(r.uniques) FILTER (WHERE r.width < v_step)) AS uniques_union
        FROM zonestats_internal.range_pieces(v_range.since, v_range.until, v_level) AS p
        CROSS JOIN LATERAL (
            SELECT m.bucket, interval '1 minute' AS width, m.requests, m.cached_requests, m.encrypted_requests,
                   m.bytes, m.cached_bytes, m.encrypted_bytes, m.threats, m.page_views, m.uniques_count, m.uniques
            FROM zonestats.rollup_1m AS m
            WHERE p.level = 'minute' AND m.zone_id = p_zone_id AND m.bucket >= p.lo AND m.bucket < p.hi
            UNION ALL
            SELECT h.bucket, interval '1 hour', h.requests, h.cached_requests, h.encrypted_requests,
                   h.bytes, h.cached_bytes, h.encrypted_bytes, h.threats, h.page_views, h.uniques_count, h.uniques
            FROM zonestats.rollup_1h AS h
            WHERE p.level = 'hour' AND h.zone_id = p_zone_id AND h.bucket >= p.lo AND h.bucket < p.hi
            UNION ALL
            SELECT d.bucket, interval '1 day', d.requests, d.cached_requests, d.encrypted_requests,
                   d.bytes, d.cached_bytes, d.encrypted_bytes, d.threats, d.page_views, d.uniques_count, d.uniques
            FROM zonestats.rollup_1d AS d
            WHERE p.level = 'day' AND d.zone_id = p_zone_id AND d.bucket >= p.lo AND d.bucket < p.hi
        ) AS r
        GROUP BY 1
    ) AS a ON a.step = g.step
    ORDER BY g.step;
END
$$;
COMMENT ON FUNCTION zonestats.zone_timeseries(bigint, timestamptz, timestamptz, interval) IS
    'per-step counters and uniques of one zone over [since, until): steps on a UTC grid (default: at most 300 points), exact at the edges (days, hours and minutes each from their rollup), NULL where the level is no longer kept';
