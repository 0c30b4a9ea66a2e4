CREATE OR REPLACE FUNCTION zonestats_internal.keys_final(internal)
RETURNS public.hstore
LANGUAGE C IMMUTABLE PARALLEL SAFE
AS '$libdir/zonestats', 'zs_keys_final';
COMMENT ON FUNCTION zonestats_internal.keys_final(internal) IS
    'support function of the count_by, sum_by and hstore_sum_agg aggregates (C, ext/zonestats.c)';
