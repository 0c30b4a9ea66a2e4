CREATE OR REPLACE FUNCTION zonestats_internal.keys_serialize(internal)
RETURNS bytea
LANGUAGE C IMMUTABLE PARALLEL SAFE STRICT
AS '$libdir/zonestats', 'zs_keys_serialize';
COMMENT ON FUNCTION zonestats_internal.keys_serialize(internal) IS
    'support function of the count_by, sum_by and hstore_sum_agg aggregates (C, ext/zonestats.c)';
