CREATE OR REPLACE FUNCTION zonestats_internal.rollup_level(p_since timestamptz, p_until timestamptz, p_step interval)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
SET timezone = 'UTC'
AS $$
    -- The coarsest rollup table whose buckets tile [p_since, p_until) and,
    -- when p_step is given, every step: both ends aligned to its bucket
    -- width (UTC) and the step a multiple of it.
    SELECT CASE
        WHEN date_trunc('day', p_since) = p_since AND date_trunc('day', p_until) = p_until
             AND (p_step IS NULL OR (extract(epoch FROM p_step)::bigint % 86400 = 0 AND extract(month FROM p_step) = 0))
            THEN 'rollup_1d'
        WHEN date_trunc('hour', p_since) = p_since AND date_trunc('hour', p_until) = p_until
             AND (p_step IS NULL OR (extract(epoch FROM p_step)::bigint % 3600 = 0 AND extract(month FROM p_step) = 0))
            THEN 'rollup_1h'
        ELSE 'rollup_1m'
    END
$$;
