CREATE OR REPLACE FUNCTION zonestats_internal.top_keys(p_map public.hstore, p_n int)
RETURNS public.hstore
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, public, pg_temp
AS $$
    -- The map cut to its p_n largest entries (zonestats.top); all when p_n is NULL.
    SELECT CASE WHEN p_n IS NULL THEN coalesce(p_map, '')
                ELSE (SELECT coalesce(hstore(array_agg(t.key), array_agg(t.value::text)), '')
                      FROM zonestats.top(p_map, p_n) AS t) END
$$;
COMMENT ON FUNCTION zonestats_internal.top_keys(public.hstore, int) IS
    'an hstore map cut to its n largest entries';
REVOKE ALL ON FUNCTION zonestats_internal.top_keys(public.hstore, int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION zonestats_internal.top_keys(public.hstore, int) TO zonestats_reader, zonestats_tenant;
