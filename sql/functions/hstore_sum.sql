CREATE OR REPLACE FUNCTION zonestats.hstore_sum(p_a public.hstore, p_b public.hstore)
RETURNS public.hstore
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, public, pg_temp
AS $$
    -- Per-key sum of two maps of integer counts; a key missing on one side
    -- counts as 0. NULL is the empty map. Commutative and associative, so
    -- it merges rollups in any order.
    SELECT CASE
        WHEN p_a IS NULL OR p_a = ''::hstore THEN coalesce(p_b, ''::hstore)
        WHEN p_b IS NULL OR p_b = ''::hstore THEN p_a
        ELSE p_a || (SELECT hstore(array_agg(e.key), array_agg((e.value::bigint + coalesce((p_a -> e.key)::bigint, 0))::text))
                     FROM each(p_b) AS e)
    END
$$;
COMMENT ON FUNCTION zonestats.hstore_sum(public.hstore, public.hstore) IS
    'per-key sum of two hstore maps of integer counts (missing keys count as 0)';
