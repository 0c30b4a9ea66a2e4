CREATE OR REPLACE FUNCTION zonestats_internal.count_by_trans(internal, text)
RETURNS internal
LANGUAGE C IMMUTABLE PARALLEL SAFE
AS '$libdir/zonestats', 'zs_count_by_trans';
COMMENT ON FUNCTION zonestats_internal.count_by_trans(internal, text) IS
    'support function of the count_by, sum_by and hstore_sum_agg aggregates (C, ext/zonestats.c)';
