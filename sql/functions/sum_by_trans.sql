CREATE OR REPLACE FUNCTION zonestats_internal.sum_by_trans(internal, text, bigint)
RETURNS internal
LANGUAGE C IMMUTABLE PARALLEL SAFE
AS '$libdir/zonestats', 'zs_sum_by_trans';
COMMENT ON FUNCTION zonestats_internal.sum_by_trans(internal, text, bigint) IS
    'support function of the count_by, sum_by and hstore_sum_agg aggregates (C, ext/zonestats.c)';
