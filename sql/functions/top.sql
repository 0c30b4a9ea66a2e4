CREATE OR REPLACE FUNCTION zonestats.top(p_map public.hstore, p_n int DEFAULT 10)
RETURNS TABLE (key text, value bigint)
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, public, pg_temp
AS $$
    -- The p_n entries of a map of integer counts with the largest values,
    -- largest first, ties by key (byte order); every entry when p_n is NULL.
    SELECT e.key, e.value::bigint
    FROM each(p_map) AS e
    ORDER BY e.value::bigint DESC, e.key COLLATE "C"
    LIMIT p_n
$$;
COMMENT ON FUNCTION zonestats.top(public.hstore, int) IS
    'the n entries of an hstore map of counts with the largest values, as (key, value) rows, largest first, ties by key; all when n is NULL';
