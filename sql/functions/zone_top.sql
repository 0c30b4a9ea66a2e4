CREATE OR REPLACE FUNCTION zonestats.zone_top(
    p_zone_id bigint, p_since timestamptz, p_until timestamptz, p_map text, p_n int DEFAULT 10)
RETURNS TABLE (key text, value bigint)
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, public, pg_temp
SET timezone = 'UTC'
AS $$
DECLARE
    v_since timestamptz := date_trunc('minute', p_since);
    v_until timestamptz := date_trunc('minute', p_until);
BEGIN
    -- The p_n keys of one map (see zonestats.maps()) with the largest sums
    -- over [p_since, p_until) for one zone, largest first, ties by key.
    IF NOT EXISTS (SELECT 1 FROM zonestats.maps() m WHERE m.map = p_map) THEN
        RAISE EXCEPTION 'zonestats.zone_top: unknown map %', quote_literal(p_map)
            USING HINT = 'SELECT map FROM zonestats.maps() lists them.';
    END IF;
    RETURN QUERY EXECUTE format($sql$
        SELECT e.key, sum(e.value::bigint)::bigint AS value
        FROM zonestats.%I t, each(t.%I) AS e
        WHERE t.zone_id = $1 AND t.bucket >= $2 AND t.bucket < $3
        GROUP BY e.key
        ORDER BY value DESC, e.key
        LIMIT $4
    $sql$, zonestats_internal.rollup_level(v_since, v_until, NULL), p_map) USING p_zone_id, v_since, v_until, p_n;
END
$$;
COMMENT ON FUNCTION zonestats.zone_top(bigint, timestamptz, timestamptz, text, int) IS
    'top n keys of one map (zonestats.maps()) for one zone over [since, until), by summed value';
