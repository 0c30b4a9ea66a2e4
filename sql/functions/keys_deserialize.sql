CREATE OR REPLACE FUNCTION zonestats_internal.keys_deserialize(bytea, internal)
RETURNS internal
LANGUAGE C IMMUTABLE PARALLEL SAFE STRICT
AS '$libdir/zonestats', 'zs_keys_deserialize';
COMMENT ON FUNCTION zonestats_internal.keys_deserialize(bytea, internal) IS
    'support function of the count_by, sum_by and hstore_sum_agg aggregates (C, ext/zonestats.c)';
