CREATE OR REPLACE FUNCTION zonestats_internal.keys_combine(internal, internal)
RETURNS internal
LANGUAGE C IMMUTABLE PARALLEL SAFE
AS '$libdir/zonestats', 'zs_keys_combine';
COMMENT ON FUNCTION zonestats_internal.keys_combine(internal, internal) IS
    'support function of the count_by, sum_by and hstore_sum_agg aggregates (C, ext/zonestats.c)';
