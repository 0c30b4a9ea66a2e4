CREATE OR REPLACE FUNCTION zonestats.hstore_sum(p_a public.hstore, p_b public.hstore)
RETURNS public.hstore
LANGUAGE C IMMUTABLE PARALLEL SAFE
AS '$libdir/zonestats', 'zs_hstore_sum';
COMMENT ON FUNCTION zonestats.hstore_sum(public.hstore, public.hstore) IS
    'per-key sum of two hstore maps of integer counts (missing keys count as 0, NULL is the empty map); commutative and associative, so rollups merge in any order (C, ext/zonestats.c)';
